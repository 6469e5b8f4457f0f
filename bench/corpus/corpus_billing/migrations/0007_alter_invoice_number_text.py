from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("corpus_billing", "0006_alter_invoice_currency_db_default"),
    ]

    operations = [
        migrations.AlterField(
            model_name="invoice",
            name="number",
            field=models.TextField(unique=True),
        ),
    ]
