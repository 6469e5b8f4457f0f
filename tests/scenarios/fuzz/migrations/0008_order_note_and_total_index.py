from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("fuzz", "0007_orders")]
    operations = [
        migrations.AddField("order", "note", models.CharField(max_length=20, null=True)),
        migrations.RunSQL(
            "CREATE INDEX CONCURRENTLY fuzz_order_total_idx ON fuzz_order (total)",
            "DROP INDEX CONCURRENTLY IF EXISTS fuzz_order_total_idx",
        ),
        migrations.RunSQL("UPDATE fuzz_order SET note = 'n' WHERE id % 2 = 0", migrations.RunSQL.noop),
    ]
