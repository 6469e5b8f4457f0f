from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("lockloss", "0003_in_transaction")]
    operations = [
        migrations.CreateModel(
            name="Other",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
            ],
        ),
    ]
