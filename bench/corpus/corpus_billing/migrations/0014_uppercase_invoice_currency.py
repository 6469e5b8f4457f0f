from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("corpus_billing", "0013_vacuum_full_invoice"),
    ]

    operations = [
        migrations.RunSQL(
            sql="UPDATE corpus_billing_invoice SET currency = upper(currency);",
            reverse_sql=migrations.RunSQL.noop,
        ),
    ]
