from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("rt_shop", "0004_name_without_default")]
    operations = [
        migrations.AddField("item", "note", models.TextField(null=True)),
    ]
