from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("corpus_accounts", "0002_account_bio"),
    ]

    operations = [
        migrations.AddField(
            model_name="account",
            name="timezone",
            field=models.CharField(db_default="UTC", max_length=64),
        ),
    ]
