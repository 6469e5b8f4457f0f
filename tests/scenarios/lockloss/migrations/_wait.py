"""Shared by the migrations: insert a row naming the migration, then, when the test
asks for it (``LOCKLOSS_WAIT`` names the migration), say so in the file
``LOCKLOSS_READY`` and wait until the file ``LOCKLOSS_GO`` exists."""

import os
import time
from pathlib import Path


def insert_and_wait(tag):
    def run(apps, schema_editor):
        Item = apps.get_model("lockloss", "Item")
        Item.objects.using(schema_editor.connection.alias).create(name=tag)
        if os.environ.get("LOCKLOSS_WAIT") != tag:
            return
        Path(os.environ["LOCKLOSS_READY"]).write_text(str(os.getpid()))
        go = Path(os.environ["LOCKLOSS_GO"])
        # Long enough for a loaded machine; the tests write the file well before.
        deadline = time.monotonic() + 300
        while not go.exists() and time.monotonic() < deadline:
            time.sleep(0.05)

    return run
