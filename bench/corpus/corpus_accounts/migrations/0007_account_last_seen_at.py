from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("corpus_accounts", "0006_account_team"),
    ]

    operations = [
        migrations.AddField(
            model_name="account",
            name="last_seen_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
    ]
