from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("corpus_support", "0005_alter_ticket_resolution_hours"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="ticket",
            index=models.Index(fields=["status", "priority"], name="ticket_status_priority_idx"),
        ),
    ]
