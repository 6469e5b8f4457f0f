from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("rt_oneway", "0002_welcome_note")]
    operations = [
        migrations.AddField("note", "title", models.CharField(max_length=100, null=True)),
    ]
