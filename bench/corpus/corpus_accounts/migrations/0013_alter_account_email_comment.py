from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("corpus_accounts", "0012_alter_account_options"),
    ]

    operations = [
        migrations.AlterField(
            model_name="account",
            name="email",
            field=models.EmailField(
                db_comment="Login e-mail, unique across the site", max_length=254, unique=True
            ),
        ),
    ]
