from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("corpus_accounts", "0008_account_last_seen_idx"),
    ]

    operations = [
        migrations.RemoveField(
            model_name="account",
            name="legacy_username",
        ),
    ]
