from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("corpus_accounts", "0013_alter_account_email_comment"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="account",
            index=models.Index(fields=["created_at"], name="acct_created_idx"),
        ),
    ]
