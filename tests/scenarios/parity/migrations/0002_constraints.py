from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("parity", "0001_initial")]
    operations = [
        # Django drops the foreign key, sets NOT NULL, and creates the foreign key again.
        migrations.AlterField(
            model_name="order",
            name="item",
            field=models.ForeignKey(on_delete=models.CASCADE, to="parity.item"),
        ),
        # Drops the unique constraint Django named when it created it.
        migrations.AlterField(
            model_name="item", name="code", field=models.CharField(max_length=20)
        ),
        migrations.AlterUniqueTogether(name="order", unique_together=set()),
        migrations.AddIndex(
            model_name="item", index=models.Index(fields=["qty"], name="parity_item_qty_idx")
        ),
    ]
