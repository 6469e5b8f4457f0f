from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("corpus_accounts", "0010_account_email_lower_idx"),
    ]

    operations = [
        migrations.RenameModel(
            old_name="Team",
            new_name="Organization",
        ),
    ]
