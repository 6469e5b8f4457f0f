from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("fuzz_online", "0002_fill")]
    operations = [
        migrations.AddConstraint(
            "item", models.UniqueConstraint(fields=["code"], name="fuzz_online_code_uniq")
        ),
    ]
