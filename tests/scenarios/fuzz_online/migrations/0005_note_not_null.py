from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("fuzz_online", "0004_ref_unique")]
    operations = [
        migrations.AlterField("item", "note", models.CharField(max_length=100)),
    ]
