from django.db import migrations


class Migration(migrations.Migration):
    # Reclaim the space left by the big currency clean-up. VACUUM cannot run in a transaction.
    atomic = False

    dependencies = [
        ("corpus_billing", "0012_delete_legacyrefund"),
    ]

    operations = [
        migrations.RunSQL(
            sql="VACUUM FULL corpus_billing_invoice;",
            reverse_sql=migrations.RunSQL.noop,
        ),
    ]
