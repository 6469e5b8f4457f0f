from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("corpus_inventory", "0013_reindex_stockitem"),
    ]

    operations = [
        migrations.AlterUniqueTogether(
            name="location",
            unique_together={("warehouse", "aisle", "shelf")},
        ),
    ]
