from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False
    dependencies = [("fuzz", "0012_backfill_score")]
    operations = [
        migrations.RunSQL(
            "CREATE INDEX CONCURRENTLY fuzz_account_score_idx ON fuzz_account (score)",
            "DROP INDEX CONCURRENTLY IF EXISTS fuzz_account_score_idx",
        ),
        migrations.AddField("account", "level", models.IntegerField(null=True)),
    ]
