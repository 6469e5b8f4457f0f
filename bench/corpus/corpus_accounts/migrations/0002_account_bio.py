from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("corpus_accounts", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="account",
            name="bio",
            field=models.TextField(blank=True, null=True),
        ),
    ]
