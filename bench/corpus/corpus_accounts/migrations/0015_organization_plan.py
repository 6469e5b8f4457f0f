from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("corpus_accounts", "0014_account_created_idx"),
    ]

    operations = [
        migrations.AddField(
            model_name="organization",
            name="plan",
            field=models.CharField(
                choices=[("free", "Free"), ("team", "Team"), ("enterprise", "Enterprise")],
                db_default="free",
                max_length=20,
            ),
        ),
    ]
