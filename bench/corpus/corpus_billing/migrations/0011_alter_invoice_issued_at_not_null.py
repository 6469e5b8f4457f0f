from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("corpus_billing", "0010_validate_invoice_issued_at_not_null"),
    ]

    operations = [
        migrations.AlterField(
            model_name="invoice",
            name="issued_at",
            field=models.DateTimeField(),
        ),
        migrations.RunSQL(
            sql="ALTER TABLE corpus_billing_invoice DROP CONSTRAINT invoice_issued_at_not_null;",
            reverse_sql=(
                "ALTER TABLE corpus_billing_invoice ADD CONSTRAINT invoice_issued_at_not_null "
                "CHECK (issued_at IS NOT NULL) NOT VALID;"
            ),
        ),
    ]
