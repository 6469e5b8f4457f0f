from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("corpus_billing", "0003_invoice_amount_non_negative_not_valid"),
    ]

    operations = [
        migrations.RunSQL(
            sql=(
                "ALTER TABLE corpus_billing_invoice "
                "VALIDATE CONSTRAINT invoice_amount_non_negative;"
            ),
            reverse_sql=migrations.RunSQL.noop,
        ),
    ]
