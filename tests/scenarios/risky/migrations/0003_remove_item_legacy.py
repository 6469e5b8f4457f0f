from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("risky", "0002_item_name_index")]
    operations = [
        migrations.RemoveField("item", "legacy"),
    ]
