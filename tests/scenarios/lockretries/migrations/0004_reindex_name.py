from django.db import migrations


class Migration(migrations.Migration):
    atomic = False
    dependencies = [("lockretries", "0003_item_sku_index")]
    operations = [
        migrations.RunSQL("REINDEX INDEX CONCURRENTLY lockretries_item_name", migrations.RunSQL.noop),
    ]
