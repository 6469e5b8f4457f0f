from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("corpus_billing", "0007_alter_invoice_number_text"),
    ]

    operations = [
        migrations.AlterField(
            model_name="payment",
            name="method",
            field=models.CharField(
                choices=[("card", "Card"), ("transfer", "Bank transfer"), ("cash", "Cash")],
                max_length=20,
            ),
        ),
    ]
