from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("conflicted", "0001_initial")]
    operations = [
        migrations.AddField("item", "f_b", models.IntegerField(null=True)),
    ]
