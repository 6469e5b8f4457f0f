from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("corpus_accounts", "0011_rename_team_organization"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="account",
            options={"ordering": ["email"], "verbose_name": "account"},
        ),
    ]
