from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("corpus_billing", "0009_invoice_issued_at_not_null_check"),
    ]

    operations = [
        migrations.RunSQL(
            sql=(
                "ALTER TABLE corpus_billing_invoice VALIDATE CONSTRAINT invoice_issued_at_not_null;"
            ),
            reverse_sql=migrations.RunSQL.noop,
        ),
    ]
