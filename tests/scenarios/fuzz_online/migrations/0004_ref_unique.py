from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("fuzz_online", "0003_code_unique")]
    operations = [
        migrations.AlterField("item", "ref", models.CharField(max_length=20, null=True, unique=True)),
    ]
