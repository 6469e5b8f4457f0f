import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("corpus_accounts", "0005_account_email_verified"),
    ]

    operations = [
        migrations.AddField(
            model_name="account",
            name="team",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="members",
                to="corpus_accounts.team",
            ),
        ),
    ]
