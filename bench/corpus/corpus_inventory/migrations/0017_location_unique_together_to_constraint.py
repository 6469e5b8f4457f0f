from django.db import migrations, models


class Migration(migrations.Migration):
    # Step 2 of 2: the index of 0016 becomes the constraint, and unique_together on the same
    # columns goes, in one transaction: (warehouse, aisle, shelf) stays unique throughout.
    dependencies = [
        ("corpus_inventory", "0016_location_unique_index_concurrently"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(
                    sql=(
                        "ALTER TABLE corpus_inventory_location "
                        "ADD CONSTRAINT location_place_uniq UNIQUE USING INDEX location_place_uniq;"
                    ),
                    reverse_sql=(
                        "ALTER TABLE corpus_inventory_location "
                        "DROP CONSTRAINT location_place_uniq;"
                    ),
                ),
            ],
            state_operations=[
                migrations.AddConstraint(
                    model_name="location",
                    constraint=models.UniqueConstraint(
                        fields=("warehouse", "aisle", "shelf"), name="location_place_uniq"
                    ),
                ),
            ],
        ),
        migrations.AlterUniqueTogether(
            name="location",
            unique_together=set(),
        ),
    ]
