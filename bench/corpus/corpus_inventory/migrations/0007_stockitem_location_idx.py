from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("corpus_inventory", "0006_location_stockitem_location"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="stockitem",
            index=models.Index(fields=["location"], name="stockitem_location_idx"),
        ),
    ]
