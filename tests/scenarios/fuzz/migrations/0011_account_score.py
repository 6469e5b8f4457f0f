from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("fuzz", "0010_widen_status")]
    operations = [
        migrations.AddField("account", "score", models.IntegerField(null=True)),
    ]
