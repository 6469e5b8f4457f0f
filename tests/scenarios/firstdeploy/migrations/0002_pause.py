import os
import time
from pathlib import Path

from django.db import migrations


def pause(apps, schema_editor):
    """With SCENARIO_PAUSE_FILE set: say it got here, then wait until that file is gone,
    so a test can kill the run in the middle of the deploy."""
    flag = os.environ.get("SCENARIO_PAUSE_FILE")
    if not flag:
        return
    Path(flag + ".reached").touch()
    deadline = time.monotonic() + 120
    while Path(flag).exists() and time.monotonic() < deadline:
        time.sleep(0.05)


class Migration(migrations.Migration):
    dependencies = [("firstdeploy", "0001_initial")]
    operations = [migrations.RunPython(pause, migrations.RunPython.noop)]
