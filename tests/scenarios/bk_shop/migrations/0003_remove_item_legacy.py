from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("bk_shop", "0002_item_note")]
    operations = [migrations.RemoveField("item", "legacy")]
