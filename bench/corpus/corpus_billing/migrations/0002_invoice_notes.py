from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("corpus_billing", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="invoice",
            name="notes",
            field=models.TextField(blank=True, null=True),
        ),
    ]
