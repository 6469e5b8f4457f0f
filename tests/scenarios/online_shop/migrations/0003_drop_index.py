from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("online_shop", "0002_online")]
    operations = [migrations.RemoveIndex("item", "online_item_qty_idx")]
