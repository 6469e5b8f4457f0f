from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("corpus_billing", "0011_alter_invoice_issued_at_not_null"),
    ]

    operations = [
        migrations.DeleteModel(
            name="LegacyRefund",
        ),
    ]
