from django.db import migrations


class Migration(migrations.Migration):
    # Case-insensitive login lookups. Written by hand: Django has no operation for it.
    dependencies = [
        ("corpus_accounts", "0009_remove_account_legacy_username"),
    ]

    operations = [
        migrations.RunSQL(
            sql=(
                "CREATE INDEX CONCURRENTLY IF NOT EXISTS account_email_lower_idx "
                "ON corpus_accounts_account (lower(email));"
            ),
            reverse_sql="DROP INDEX CONCURRENTLY IF EXISTS account_email_lower_idx;",
        ),
    ]
