from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("firstdeploy", "0003_item_code")]
    operations = [migrations.RemoveField("item", "legacy")]
