from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("corpus_inventory", "0004_warehouse_code_unique_index_concurrently"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(
                    sql=(
                        "ALTER TABLE corpus_inventory_warehouse "
                        "ADD CONSTRAINT inventory_warehouse_code_uniq "
                        "UNIQUE USING INDEX inventory_warehouse_code_uniq;"
                    ),
                    reverse_sql=(
                        "ALTER TABLE corpus_inventory_warehouse "
                        "DROP CONSTRAINT inventory_warehouse_code_uniq;"
                    ),
                ),
            ],
            state_operations=[
                migrations.AddConstraint(
                    model_name="warehouse",
                    constraint=models.UniqueConstraint(
                        fields=("code",), name="inventory_warehouse_code_uniq"
                    ),
                ),
            ],
        ),
    ]
