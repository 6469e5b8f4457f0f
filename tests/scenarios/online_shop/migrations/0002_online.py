from django.db import migrations, models


class Migration(migrations.Migration):
    # Each operation on the existing table has an online form; the new table's keep
    # the plain one.
    dependencies = [("online_shop", "0001_initial")]
    operations = [
        migrations.AddIndex("item", models.Index(fields=["qty"], name="online_item_qty_idx")),
        migrations.AddField("item", "flag", models.IntegerField(default=0)),
        migrations.AddConstraint(
            "item",
            models.CheckConstraint(condition=models.Q(qty__gte=0), name="online_item_qty_gte_0"),
        ),
        migrations.AddField(
            "item",
            "category",
            models.ForeignKey("online_shop.Category", null=True, on_delete=models.CASCADE),
        ),
        migrations.AddConstraint(
            "item", models.UniqueConstraint(fields=["code"], name="online_item_code_uniq")
        ),
        migrations.AlterField("item", "note", models.CharField(max_length=100)),
        migrations.CreateModel(
            "Tag",
            [
                ("id", models.BigAutoField(primary_key=True)),
                ("item", models.ForeignKey("online_shop.Item", on_delete=models.CASCADE)),
                ("label", models.CharField(max_length=20, unique=True)),
            ],
        ),
        migrations.AddIndex("tag", models.Index(fields=["label"], name="online_tag_label_idx")),
    ]
