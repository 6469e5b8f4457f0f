from django.db import migrations, models

CHECK = models.CheckConstraint(
    condition=models.Func(
        models.F("qty"), function="nonatomic_slow_nonnegative", output_field=models.BooleanField()
    ),
    name="nonatomic_order_qty_check",
)


class Migration(migrations.Migration):
    # The online way to add a constraint to a table in use: NOT VALID takes ACCESS
    # EXCLUSIVE only for a moment and commits; VALIDATE then scans under SHARE UPDATE
    # EXCLUSIVE, which lets reads and writes go on.
    atomic = False
    dependencies = [("nonatomic", "0001_initial")]
    operations = [
        migrations.RunSQL(
            "ALTER TABLE nonatomic_order ADD CONSTRAINT nonatomic_order_qty_check "
            "CHECK (nonatomic_slow_nonnegative(qty)) NOT VALID",
            "ALTER TABLE nonatomic_order DROP CONSTRAINT nonatomic_order_qty_check",
            state_operations=[migrations.AddConstraint("order", CHECK)],
        ),
        migrations.RunSQL(
            "ALTER TABLE nonatomic_order VALIDATE CONSTRAINT nonatomic_order_qty_check",
            migrations.RunSQL.noop,
        ),
        migrations.AddField("order", "note", models.TextField(null=True)),
    ]
