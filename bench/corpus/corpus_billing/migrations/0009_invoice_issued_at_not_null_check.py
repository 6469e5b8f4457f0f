from django.db import migrations


class Migration(migrations.Migration):
    # Making issued_at NOT NULL without a long lock, step 1 of 3 (PostgreSQL 12+): a NOT VALID
    # CHECK, validated online in 0010, lets SET NOT NULL in 0011 skip its table scan.
    dependencies = [
        ("corpus_billing", "0008_alter_payment_method_choices"),
    ]

    operations = [
        migrations.RunSQL(
            sql=(
                "ALTER TABLE corpus_billing_invoice ADD CONSTRAINT invoice_issued_at_not_null "
                "CHECK (issued_at IS NOT NULL) NOT VALID;"
            ),
            reverse_sql=(
                "ALTER TABLE corpus_billing_invoice DROP CONSTRAINT invoice_issued_at_not_null;"
            ),
        ),
    ]
