from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


def fill_sku(apps, schema_editor):
    Item = apps.get_model("mixed", "Item")
    for item in Item.objects.filter(sku__isnull=True).only("id", "name"):
        item.sku = item.name.upper()
        item.save(update_fields=["sku"])


class Migration(migrations.Migration):
    # atomic left at its default (True): plain Django refuses the concurrent index.
    dependencies = [("mixed", "0001_initial")]
    operations = [
        migrations.AddField("item", "sku", models.CharField(max_length=60, null=True)),
        AddIndexConcurrently(
            "item", models.Index(fields=["sku"], name="mixed_item_sku_idx")
        ),
        migrations.RunPython(fill_sku, migrations.RunPython.noop),
    ]
