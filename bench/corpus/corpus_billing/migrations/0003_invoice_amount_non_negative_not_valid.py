from django.db import migrations, models


class Migration(migrations.Migration):
    # Step 1 of 2: the constraint holds for new rows at once; existing rows are checked by
    # VALIDATE CONSTRAINT in 0004, which does not block reads or writes.
    dependencies = [
        ("corpus_billing", "0002_invoice_notes"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(
                    sql=(
                        "ALTER TABLE corpus_billing_invoice "
                        "ADD CONSTRAINT invoice_amount_non_negative CHECK (amount >= 0) NOT VALID;"
                    ),
                    reverse_sql=(
                        "ALTER TABLE corpus_billing_invoice "
                        "DROP CONSTRAINT invoice_amount_non_negative;"
                    ),
                ),
            ],
            state_operations=[
                migrations.AddConstraint(
                    model_name="invoice",
                    constraint=models.CheckConstraint(
                        condition=models.Q(("amount__gte", 0)),
                        name="invoice_amount_non_negative",
                    ),
                ),
            ],
        ),
    ]
