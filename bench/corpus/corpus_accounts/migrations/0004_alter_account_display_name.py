from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("corpus_accounts", "0003_account_timezone"),
    ]

    operations = [
        migrations.AlterField(
            model_name="account",
            name="display_name",
            field=models.CharField(max_length=200),
        ),
    ]
