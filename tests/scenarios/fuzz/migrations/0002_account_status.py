from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("fuzz", "0001_initial")]
    operations = [
        migrations.AddField("account", "status", models.CharField(max_length=10, null=True)),
    ]
