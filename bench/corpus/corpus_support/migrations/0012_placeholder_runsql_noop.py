from django.db import migrations


class Migration(migrations.Migration):
    # Placeholder for a hand-written trigger that was reverted before release.
    dependencies = [
        ("corpus_support", "0011_neutralise_old_data_migration"),
    ]

    operations = [
        migrations.RunSQL(migrations.RunSQL.noop, reverse_sql=migrations.RunSQL.noop),
    ]
