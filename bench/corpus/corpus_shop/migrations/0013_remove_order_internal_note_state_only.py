from django.db import migrations


class Migration(migrations.Migration):
    # The code stops using the column now; a later release drops it once no running
    # version reads it.
    dependencies = [
        ("corpus_shop", "0012_backfill_order_totals"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveField(
                    model_name="order",
                    name="internal_note",
                ),
            ],
            database_operations=[],
        ),
    ]
