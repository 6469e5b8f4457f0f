from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("fuzz_online", "0009_indexes")]
    operations = [
        migrations.AddField("item", "flag", models.IntegerField(default=1)),
    ]
