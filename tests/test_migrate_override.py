"""Plain ``migrate`` takes the same lock and ledger, and otherwise stays Django's ``migrate``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import (
    ROOT,
    applied,
    command_env,
    copy_scenario,
    fresh_database,
    lock_holder_pid,
    query,
    run_command,
    start_command,
    wait_for,
)

DJANGO_MIGRATE = (
    "import django, sys; django.setup(); "
    "from django.core.management import call_command; "
    "from django.core.management.commands.migrate import Command; "
    "call_command(Command(), *sys.argv[1:])"
)


@pytest.fixture
def scenarios(tmp_path: Path) -> Path:
    copy_scenario("basic", tmp_path)
    copy_scenario("slow", tmp_path)
    return tmp_path


def test_output_is_djangos_at_default_verbosity(scenarios):
    with fresh_database() as ours, fresh_database() as theirs:
        env = command_env(ours, apps=["basic"], pythonpath=[scenarios])
        mine = run_command(["migrate"], env, expect=0)
        django_env = command_env(theirs, apps=["basic"], pythonpath=[scenarios])
        reference = subprocess.run(
            [sys.executable, "-c", DJANGO_MIGRATE],
            env=django_env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        assert mine.out == reference.stdout
        assert mine.err == reference.stderr == ""
        assert applied(ours) == applied(theirs)
        assert query(ours, "SELECT command, outcome FROM django_safemigrate_run") == [
            ("migrate", "applied")
        ]


def test_plan_and_check_change_nothing_and_keep_djangos_exit_codes(scenarios):
    with fresh_database() as database:
        env = command_env(database, apps=["basic"], pythonpath=[scenarios])
        run_command(["migrate"], env, expect=0)
        run_command(["migrate", "basic", "0001"], env, expect=0)
        plan = run_command(["migrate", "--plan"], env, expect=0)
        assert "basic.0002_item_price" in plan.out
        run_command(["migrate", "--check"], env, expect=1)
        assert ("basic", "0002_item_price") not in applied(database)
        # --plan and --check took no lock and wrote no run.
        assert query(database, "SELECT count(*) FROM django_safemigrate_run") == [(2,)]
        run_command(["migrate"], env, expect=0)
        run_command(["migrate", "--check"], env, expect=0)
        assert query(database, "SELECT count(*) FROM django_safemigrate_run") == [(3,)]


def test_fake_and_unapply_are_recorded(scenarios):
    with fresh_database() as database:
        env = command_env(database, apps=["basic"], pythonpath=[scenarios])
        run_command(["migrate"], env, expect=0)
        run_command(["migrate", "basic", "0001"], env, expect=0)
        run_command(["migrate", "basic", "0002", "--fake"], env, expect=0)
        rows = query(
            database,
            "SELECT name, outcome FROM django_safemigrate_migrationrecord "
            "WHERE app_label = 'basic' ORDER BY id",
        )
        assert rows[-3:] == [
            ("0003_item_sku", "unapplied"),
            ("0002_item_price", "unapplied"),
            ("0002_item_price", "faked"),
        ]
        # The runs say which way they went: a rollback is no "applied" run.
        runs = query(database, "SELECT outcome FROM django_safemigrate_run ORDER BY id")
        assert [outcome for (outcome,) in runs][-3:] == ["applied", "unapplied", "applied"]


def test_migrate_waits_for_the_lock_and_says_so(scenarios):
    with fresh_database() as database:
        env = command_env(database, apps=["slow"], pythonpath=[scenarios])
        run_command(["migrate", "slow", "0001"], env, expect=0)
        holder = start_command(["migrate"], {**env, "SLOW_SECONDS": "3"})
        try:
            wait_for(lambda: lock_holder_pid(database) is not None)
            timed_out = run_command(["migrate", "--lock-wait", "0"], env, expect=4)
            assert "Could not take the migration lock" in timed_out.err
            waited = run_command(["migrate"], env, expect=0)
        finally:
            holder.wait(timeout=60)
        assert "Waiting for the migration lock" in waited.err
        assert f"pid {holder.pid}" in waited.err
        assert "No migrations to apply." in waited.out


@pytest.mark.django_db
def test_the_test_database_was_created_through_the_override():
    from django_safemigrate.models import Run

    runs = list(Run.objects.values_list("command", "outcome", "exit_code"))
    assert ("migrate", "applied", 0) in runs


def test_a_database_that_is_not_postgresql_is_migrated_by_djangos_migrate(tmp_path, scenarios):
    """A second, non-PostgreSQL database of a project: no lock, no ledger, Django's output."""
    import sqlite3

    database_file = tmp_path / "db.sqlite3"
    env = command_env(
        None, apps=["basic"], pythonpath=[scenarios], database_url=f"sqlite:///{database_file}"
    )
    result = run_command(["migrate"], env, expect=0)
    assert "Applying basic.0003_item_sku... OK" in result.out
    with sqlite3.connect(database_file) as conn:
        rows = conn.execute("SELECT app, name FROM django_migrations WHERE app = 'basic'")
        assert sorted(rows) == [
            ("basic", "0001_initial"),
            ("basic", "0002_item_price"),
            ("basic", "0003_item_sku"),
        ]
        # The ledger's tables exist (the app's own migrations ran) but no run was recorded.
        assert conn.execute("SELECT count(*) FROM django_safemigrate_run").fetchone() == (0,)
