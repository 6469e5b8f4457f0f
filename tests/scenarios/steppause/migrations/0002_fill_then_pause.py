import os
import time
from pathlib import Path

from django.db import migrations


def pause(apps, schema_editor):
    """With SCENARIO_PAUSE_FILE set: say it got here, then wait until that file is gone,
    so a test can look at the run while its second step runs."""
    flag = os.environ.get("SCENARIO_PAUSE_FILE")
    if not flag:
        return
    Path(flag + ".reached").touch()
    deadline = time.monotonic() + 120
    while Path(flag).exists() and time.monotonic() < deadline:
        time.sleep(0.05)


class Migration(migrations.Migration):
    """Not atomic: each operation is a step of its own (step 1 inserts, step 2 pauses)."""

    atomic = False
    dependencies = [("steppause", "0001_initial")]
    operations = [
        migrations.RunSQL("INSERT INTO steppause_item (name) VALUES ('first')", migrations.RunSQL.noop),
        migrations.RunPython(pause, migrations.RunPython.noop),
    ]
