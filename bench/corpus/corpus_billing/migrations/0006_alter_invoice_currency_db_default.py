from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("corpus_billing", "0005_payment_amount_positive"),
    ]

    operations = [
        migrations.AlterField(
            model_name="invoice",
            name="currency",
            field=models.CharField(db_default="EUR", max_length=3),
        ),
    ]
