from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("shop", "0002_item_name_idx")]
    operations = [migrations.RemoveField("item", "note")]
