from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("corpus_inventory", "0009_stockitem_shuffle_key"),
    ]

    operations = [
        migrations.AlterModelTable(
            name="warehouse",
            table="inventory_warehouse",
        ),
    ]
