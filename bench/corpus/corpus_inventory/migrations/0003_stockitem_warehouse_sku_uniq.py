from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("corpus_inventory", "0002_stockitem_reserved"),
    ]

    operations = [
        migrations.AddConstraint(
            model_name="stockitem",
            constraint=models.UniqueConstraint(
                fields=("warehouse", "sku"), name="stockitem_warehouse_sku_uniq"
            ),
        ),
    ]
