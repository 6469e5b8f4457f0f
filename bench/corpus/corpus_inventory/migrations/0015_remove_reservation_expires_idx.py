from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("corpus_inventory", "0014_alter_location_unique_together"),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name="reservation",
            name="reservation_expires_idx",
        ),
    ]
