import os
import time

from django.db import migrations


def wait(apps, schema_editor):
    # No statement runs while it waits: the lock connection and the migration
    # connection are both idle, as in a long Python data migration.
    time.sleep(float(os.environ.get("SLOW_SECONDS", "3")))


class Migration(migrations.Migration):
    dependencies = [("slow", "0001_initial")]
    operations = [migrations.RunPython(wait, migrations.RunPython.noop)]
