import django.db.models.functions.datetime
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("corpus_inventory", "0007_stockitem_location_idx"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(
                    sql=(
                        "ALTER TABLE corpus_inventory_stockitem "
                        "ADD COLUMN counted_at timestamp with time zone DEFAULT now();"
                    ),
                    reverse_sql="ALTER TABLE corpus_inventory_stockitem DROP COLUMN counted_at;",
                ),
            ],
            state_operations=[
                migrations.AddField(
                    model_name="stockitem",
                    name="counted_at",
                    field=models.DateTimeField(
                        blank=True,
                        db_default=django.db.models.functions.datetime.Now(),
                        null=True,
                    ),
                ),
            ],
        ),
    ]
