from django.db import migrations


class Migration(migrations.Migration):
    # Step 1 of 2 for turning Location's unique_together into a UniqueConstraint online:
    # build the unique index without blocking writes. 0017 swaps the constraints.
    atomic = False

    dependencies = [
        ("corpus_inventory", "0015_remove_reservation_expires_idx"),
    ]

    operations = [
        migrations.RunSQL(
            sql=(
                "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS location_place_uniq "
                "ON corpus_inventory_location (warehouse_id, aisle, shelf);"
            ),
            reverse_sql="DROP INDEX CONCURRENTLY IF EXISTS location_place_uniq;",
        ),
    ]
