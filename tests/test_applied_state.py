"""The state of the applied migrations that a governed run applies its plan from.

``LedgerExecutor._create_project_state(with_applied_migrations=True)`` walks the applied
migrations on an ``IncrementalState`` (the state the plan is then applied from, walking it
forward), without Django's per-``AlterField``/``RenameField`` scans of every field of the
project; the state it returns must be Django's, model for model. Checked on a generated
project of 300 migrations (``bench/generate_project.py``: added, altered, renamed and
removed fields, foreign keys, indexes, constraints, RunPython, RunSQL) with all but the
leaf migrations of each app applied, in a child process against a real database.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.helpers import ROOT, connect, fresh_database, url_for

SIZE = 300

COMPARE = textwrap.dedent(
    """
    import django
    from django.db.migrations import state as state_module, utils

    django.setup()
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor
    from django_safemigrate.execution.executor import LedgerExecutor

    scans = []
    for name in ("field_is_referenced", "get_references"):
        original = getattr(utils, name)

        def counting(*args, _original=original, **kwargs):
            scans.append(1)
            return _original(*args, **kwargs)

        setattr(state_module, name, counting)

    django_state = MigrationExecutor(connection)._create_project_state(True)
    print("django scans", len(scans) > 0)
    scans.clear()
    ours = LedgerExecutor(connection)._create_project_state(True)
    print("our scans", len(scans))
    print("type", type(ours).__name__)
    print("models", len(django_state.models))
    print("equal", ours == django_state)
    print("real apps equal", ours.real_apps == django_state.real_apps)
    """
)


def _generator():
    spec = importlib.util.spec_from_file_location(
        "generate_project", ROOT / "bench" / "generate_project.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def run(project: Path, database: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(DJANGO_SETTINGS_MODULE="project.settings", DATABASE_URL=url_for(database))
    result = subprocess.run(
        [sys.executable, *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


@pytest.fixture
def database():
    with fresh_database() as name:
        yield name


def test_the_applied_state_is_djangos_without_its_field_scans(database, tmp_path):
    project = tmp_path / "project"
    _generator().generate_project(project, SIZE, seed=3)
    # Recorded as applied without running them (the state comes from the files alone).
    run(project, database, "manage.py", "migrate", "django_safemigrate", "-v", "0")
    run(project, database, "manage.py", "migrate", "--fake", "-v", "0")
    with connect(database) as conn:
        rows = conn.execute(
            "SELECT app, max(name) FROM django_migrations "
            "WHERE app NOT IN ('auth', 'contenttypes', 'django_safemigrate') GROUP BY app"
        ).fetchall()
        assert rows
        for app, name in rows:  # the leaves: the state stops before them
            conn.execute("DELETE FROM django_migrations WHERE app = %s AND name = %s", [app, name])
    out = run(project, database, "-c", COMPARE).stdout
    assert "django scans True" in out, out
    assert "our scans 0" in out, out
    assert "type IncrementalState" in out, out
    assert "equal True" in out, out
    assert "real apps equal True" in out, out
    models = int(out.split("models ")[1].split()[0])
    assert models > 50, out
