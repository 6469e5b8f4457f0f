from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("fuzz", "0006_order")]
    operations = [
        migrations.RunSQL(
            "INSERT INTO fuzz_order (total, account_id) SELECT i % 500, 1 + (i % 20000) FROM generate_series(1, 20000) i",
            migrations.RunSQL.noop,
        ),
    ]
