from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("basic", "0001_initial")]
    operations = [
        migrations.AddField("item", "price", models.IntegerField(null=True)),
    ]
