from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("corpus_accounts", "0007_account_last_seen_at"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="account",
            index=models.Index(fields=["last_seen_at"], name="acct_last_seen_idx"),
        ),
    ]
