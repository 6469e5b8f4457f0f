from django.db import migrations


class Migration(migrations.Migration):
    # Step 1 of 2 for a unique warehouse code: build the index online. 0005 turns it into
    # the constraint.
    atomic = False

    dependencies = [
        ("corpus_inventory", "0003_stockitem_warehouse_sku_uniq"),
    ]

    operations = [
        migrations.RunSQL(
            sql=(
                "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS inventory_warehouse_code_uniq "
                "ON corpus_inventory_warehouse (code);"
            ),
            reverse_sql="DROP INDEX CONCURRENTLY IF EXISTS inventory_warehouse_code_uniq;",
        ),
    ]
