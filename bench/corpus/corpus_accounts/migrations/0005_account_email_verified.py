from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("corpus_accounts", "0004_alter_account_display_name"),
    ]

    operations = [
        migrations.AddField(
            model_name="account",
            name="email_verified",
            field=models.BooleanField(default=False),
        ),
    ]
