from django.db import migrations


class Migration(migrations.Migration):
    # Stock items may now repeat a SKU within a warehouse (one per location).
    dependencies = [
        ("corpus_inventory", "0017_location_unique_together_to_constraint"),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name="stockitem",
            name="stockitem_warehouse_sku_uniq",
        ),
    ]
