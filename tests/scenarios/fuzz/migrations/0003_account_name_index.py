from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("fuzz", "0002_account_status")]
    operations = [
        migrations.AddIndex("account", models.Index(fields=["name"], name="fuzz_account_name_idx")),
    ]
