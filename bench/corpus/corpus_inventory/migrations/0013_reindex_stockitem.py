from django.db import migrations


class Migration(migrations.Migration):
    # The indexes bloated after the bulk re-count.
    dependencies = [
        ("corpus_inventory", "0012_truncate_reservations"),
    ]

    operations = [
        migrations.RunSQL(
            sql="REINDEX TABLE corpus_inventory_stockitem;",
            reverse_sql=migrations.RunSQL.noop,
        ),
    ]
