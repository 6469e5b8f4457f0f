import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("corpus_inventory", "0005_warehouse_code_unique_constraint"),
    ]

    operations = [
        migrations.CreateModel(
            name="Location",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("aisle", models.CharField(max_length=10)),
                ("shelf", models.CharField(max_length=10)),
                (
                    "warehouse",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="locations",
                        to="corpus_inventory.warehouse",
                    ),
                ),
            ],
        ),
        # No index here: 0007 builds it concurrently.
        migrations.AddField(
            model_name="stockitem",
            name="location",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to="corpus_inventory.location",
            ),
        ),
    ]
