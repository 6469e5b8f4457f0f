from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False
    dependencies = [("fuzz", "0018_account_tag")]
    operations = [
        migrations.RunSQL(
            "CREATE UNIQUE INDEX CONCURRENTLY fuzz_tag_name_uniq ON fuzz_tag (name)",
            "DROP INDEX CONCURRENTLY IF EXISTS fuzz_tag_name_uniq",
        ),
    ]
