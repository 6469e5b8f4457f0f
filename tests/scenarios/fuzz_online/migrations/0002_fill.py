from django.db import migrations


class Migration(migrations.Migration):
    # The rows the later migrations find: enough that their concurrent builds,
    # VALIDATE scans and the type change's copy take a noticeable time.
    dependencies = [("fuzz_online", "0001_initial")]
    operations = [
        migrations.RunSQL(
            "INSERT INTO fuzz_online_category (name) SELECT 'category ' || i FROM generate_series(1, 100) i",
            migrations.RunSQL.noop,
        ),
        migrations.RunSQL(
            "INSERT INTO fuzz_online_item (code, ref, qty, note, amount) "
            "SELECT 'c' || i, 'r' || i, CASE WHEN i % 7 = 0 THEN NULL ELSE i % 1000 END, "
            "'note ' || i, (i * 7919) % 1000003 - 500000 FROM generate_series(1, 100000) i",
            migrations.RunSQL.noop,
        ),
    ]
