from django.db import migrations


class Migration(migrations.Migration):
    # Reservations are recomputed by the new allocator; start from a clean table.
    dependencies = [
        ("corpus_inventory", "0011_fix_negative_stock"),
    ]

    operations = [
        migrations.RunSQL(
            sql="TRUNCATE corpus_inventory_reservation;",
            reverse_sql=migrations.RunSQL.noop,
        ),
    ]
