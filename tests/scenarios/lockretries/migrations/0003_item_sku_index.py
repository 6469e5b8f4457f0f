from django.db import migrations


class Migration(migrations.Migration):
    atomic = False
    dependencies = [("lockretries", "0002_item_sku")]
    operations = [
        migrations.RunSQL(
            "CREATE INDEX CONCURRENTLY lockretries_item_sku ON lockretries_item (sku)",
            "DROP INDEX CONCURRENTLY lockretries_item_sku",
        ),
    ]
