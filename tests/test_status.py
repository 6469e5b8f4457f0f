"""``safemigrate --status``: read-only, while another process holds the lock and runs a
step, and its errors with their documented exit code (real processes, real PostgreSQL)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import (
    command_env,
    copy_scenario,
    fresh_database,
    lock_holder_pid,
    query,
    run_command,
    start_command,
    wait_for,
)

# What --status reads from the ledger: the same on every Django version,
# so CI runs them in its first pass only.
pytestmark = pytest.mark.once

APP = "firstdeploy"


@pytest.fixture
def database() -> Iterator[str]:
    with fresh_database("sm_status") as name:
        yield name


@pytest.fixture
def project(tmp_path: Path) -> Path:
    copy_scenario(APP, tmp_path)
    return tmp_path


def _env(database: str, project: Path, **extra: str) -> dict[str, str]:
    return command_env(database, apps=[APP], pythonpath=[project], extra=extra)


def _ledger(database: str) -> list[Any]:
    """Everything the ledger holds, and the sessions on the database but ours."""
    return [
        query(database, "SELECT * FROM django_safemigrate_run ORDER BY id"),
        query(database, "SELECT * FROM django_safemigrate_steprecord ORDER BY id"),
        query(database, "SELECT * FROM django_safemigrate_migrationrecord ORDER BY id"),
        query(database, "SELECT app, name FROM django_migrations ORDER BY id"),
    ]


def _sessions(database: str) -> set[tuple[Any, ...]]:
    return set(
        query(
            database,
            "SELECT pid, application_name FROM pg_stat_activity WHERE datname = "
            "current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'",
        )
    )


def current_query(database: str, pid: int) -> str:
    rows = query(
        database,
        "SELECT query FROM pg_stat_activity WHERE application_name LIKE %s",
        [f"django_safemigrate runner % %:{pid}"],
    )
    return str(rows[0][0])


def test_status_while_another_run_holds_the_lock(database: str, project: Path) -> None:
    pause = project / "pause"
    pause.touch()
    proc = start_command(["safemigrate"], _env(database, project, SCENARIO_PAUSE_FILE=str(pause)))
    try:
        wait_for(lambda: Path(f"{pause}.reached").exists() or proc.poll() is not None, 120)
        assert proc.poll() is None, proc.communicate()
        backend = lock_holder_pid(database)
        before, sessions = _ledger(database), _sessions(database)
        running = current_query(database, proc.pid)

        result = run_command(
            ["safemigrate", "--status", "--format", "json"], _env(database, project), expect=0
        )
        text = run_command(["safemigrate", "--status"], _env(database, project), expect=0)

        # Read-only: nothing written, the lock still with the run, no session left behind.
        assert _ledger(database) == before
        assert lock_holder_pid(database) == backend
        wait_for(lambda: _sessions(database) == sessions, 30)
    finally:
        pause.unlink(missing_ok=True)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, out + err

    status = json.loads(result.out)
    assert status["schema_version"] == 1
    assert status["database"] == {"alias": "default", "name": database, "schema": "public"}
    lock = status["lock"]
    run_id = before[0][-1][0]
    assert lock["held"] is True
    assert lock["run_id"] == run_id
    assert lock["holder"]["pid"] == proc.pid
    assert lock["holder"]["backend_pid"] == backend
    assert lock["holder"]["command"] == "manage.py safemigrate"
    assert lock["holder"]["query"] == running
    assert lock["holder"]["application_name"].startswith("django_safemigrate lock ")
    current = status["current"]
    assert current["run_id"] == run_id
    assert current["pid"] == proc.pid
    assert current["migration"] == "firstdeploy.0002_pause"
    session = current["session"]
    assert session is not None
    assert session["state"] == "idle in transaction"
    assert [r["id"] for r in status["runs"]] == [run_id]
    assert status["runs"][0]["outcome"] == "running"
    assert f"pid {proc.pid}" in text.out
    assert "firstdeploy.0002_pause" in text.out
    assert f"ledger run {run_id}" in text.out

    after = json.loads(
        run_command(
            ["safemigrate", "--status", "--format", "json"], _env(database, project), expect=0
        ).out
    )
    assert after["lock"] == {"held": False, "holder": None, "run_id": None}
    assert after["current"] is None
    assert after["runs"][0]["outcome"] == "applied"
    assert after["runs"][0]["duration"] > 0


def test_status_shows_the_last_runs_newest_first(database: str, project: Path) -> None:
    env = _env(database, project)
    run_command(["safemigrate", APP, "0001"], env, expect=0)
    run_command(["safemigrate", APP, "0002"], env, expect=0)
    run_command(["safemigrate"], env, expect=3)
    status = json.loads(
        run_command(
            ["safemigrate", "--status", "--format", "json", "--runs", "2"], env, expect=0
        ).out
    )
    assert [r["outcome"] for r in status["runs"]] == ["blocked", "applied"]
    assert status["runs"][0]["exit_code"] == 3
    assert "Blocked" in status["runs"][0]["message"]
    assert set(status["runs"][0]) == {
        "id", "command", "argv", "host", "pid", "user", "started_at", "lock_acquired_at",
        "finished_at", "duration", "outcome", "exit_code", "message",
    }  # fmt: skip


def test_status_before_the_ledger_exists_is_exit_2(database: str, project: Path) -> None:
    result = run_command(["safemigrate", "--status"], _env(database, project), expect=2)
    assert "ledger does not exist yet" in result.err
    assert "Nothing was read or changed." in result.err
    assert query(database, "SELECT to_regclass('django_migrations')") == [(None,)]


def test_status_of_an_unreachable_database_is_exit_2(project: Path) -> None:
    # Port 1: nothing listens there.
    env = command_env(
        None, apps=[APP], pythonpath=[project], database_url="postgres://postgres@127.0.0.1:1/x"
    )
    result = run_command(["safemigrate", "--status"], env, expect=2)
    assert "Cannot read the migration status: cannot connect" in result.err


@pytest.mark.parametrize(
    "args",
    [["--format", "json"], ["--status", "--plan"], ["--status", "--runs", "0"], ["--runs", "3"]],
)
def test_status_options_misused_are_exit_2(database: str, project: Path, args: list[str]) -> None:
    result = run_command(["safemigrate", *args], _env(database, project), expect=2)
    assert "Nothing was read or changed." in result.err
    assert query(database, "SELECT to_regclass('django_migrations')") == [(None,)]


def test_status_names_the_step_of_a_migration_split_into_steps(tmp_path: Path) -> None:
    copy_scenario("steppause", tmp_path)
    pause = tmp_path / "pause"
    pause.touch()
    with fresh_database("sm_status") as database:
        env = command_env(database, apps=["steppause"], pythonpath=[tmp_path])
        proc = start_command(["safemigrate"], {**env, "SCENARIO_PAUSE_FILE": str(pause)})
        try:
            wait_for(lambda: Path(f"{pause}.reached").exists() or proc.poll() is not None, 120)
            assert proc.poll() is None, proc.communicate()
            result = run_command(["safemigrate", "--status", "--format", "json"], env, expect=0)
            text = run_command(["safemigrate", "--status"], env, expect=0).out
        finally:
            pause.unlink(missing_ok=True)
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, out + err
    current = json.loads(result.out)["current"]
    assert current["migration"] == "steppause.0002_fill_then_pause"
    assert (current["step"], current["step_count"]) == (2, 2)
    assert [(s["step"], s["step_count"]) for s in current["finished_steps"]] == [(1, 2)]
    assert "Running now: ledger run" in text
    assert "step 2/2 of steppause.0002_fill_then_pause" in text
