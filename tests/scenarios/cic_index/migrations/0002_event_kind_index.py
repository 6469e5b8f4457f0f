import os
import time

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


def give_waiters_time(apps, schema_editor):
    time.sleep(float(os.environ.get("SLOW_SECONDS", "2")))


class Migration(migrations.Migration):
    atomic = False
    dependencies = [("cic_index", "0001_initial")]
    operations = [
        migrations.RunPython(give_waiters_time, migrations.RunPython.noop),
        AddIndexConcurrently("event", models.Index(fields=["kind"], name="event_kind_idx")),
    ]
