from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("sw_shop", "0001_initial"), ("sw_people", "0004_referenced_changes")]
    operations = [
        migrations.AddField("order", "note", models.TextField(null=True)),
        migrations.AlterField("item", "parent", models.ForeignKey(
            null=True, on_delete=models.SET_NULL, to="sw_shop.item"
        )),
        migrations.RenameField("order", "note", "remark"),
        migrations.AddIndex("order", models.Index(fields=["remark"], name="sw_order_remark_idx")),
        # A model pointing at itself, renamed: its own foreign key follows.
        migrations.AlterModelTable("item", "shop_item"),
        migrations.AlterUniqueTogether("order", {("person", "team")}),
        migrations.AlterOrderWithRespectTo("item", "order"),
        migrations.AlterModelOptions("order", {"ordering": ["-id"]}),
    ]
