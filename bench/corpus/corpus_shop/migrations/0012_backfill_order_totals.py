from decimal import Decimal

from django.db import migrations


def compute_totals(apps, schema_editor):
    Order = apps.get_model("corpus_shop", "Order")
    for order in Order.objects.prefetch_related("lines").iterator(chunk_size=500):
        order.total = sum(
            (line.quantity * line.unit_price for line in order.lines.all()), Decimal("0")
        )
        order.save(update_fields=["total"])


class Migration(migrations.Migration):
    dependencies = [
        ("corpus_shop", "0011_rename_product_name_title"),
    ]

    operations = [
        migrations.RunPython(compute_totals, migrations.RunPython.noop),
    ]
