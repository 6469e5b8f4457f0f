from django.db import migrations


def clamp_negative_quantities(apps, schema_editor):
    StockItem = apps.get_model("corpus_inventory", "StockItem")
    StockItem.objects.filter(quantity__lt=0).update(quantity=0)


class Migration(migrations.Migration):
    dependencies = [
        ("corpus_inventory", "0010_alter_warehouse_table"),
    ]

    operations = [
        migrations.RunPython(clamp_negative_quantities, migrations.RunPython.noop),
    ]
