import django.db.models.functions.math
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("corpus_inventory", "0008_stockitem_counted_at"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(
                    sql=(
                        "ALTER TABLE corpus_inventory_stockitem "
                        "ADD COLUMN shuffle_key double precision DEFAULT random();"
                    ),
                    reverse_sql="ALTER TABLE corpus_inventory_stockitem DROP COLUMN shuffle_key;",
                ),
            ],
            state_operations=[
                migrations.AddField(
                    model_name="stockitem",
                    name="shuffle_key",
                    field=models.FloatField(
                        db_default=django.db.models.functions.math.Random(), null=True
                    ),
                ),
            ],
        ),
    ]
