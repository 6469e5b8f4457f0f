from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("fleet_shop", "0002_note")]
    operations = [
        migrations.RemoveField("product", "legacy_code"),
    ]
