from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("fuzz_online", "0010_flag")]
    operations = [
        migrations.AlterField("item", "amount", models.BigIntegerField()),
    ]
