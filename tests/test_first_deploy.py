"""A run that began on an empty database stays the first deploy until it completes.

The first deploy is killed in the middle (a real process, SIGKILL) with the destructive
``firstdeploy.0004`` still ahead; the rerun must apply it without a review, as the first
deploy would have. A migration applied outside the first deploy, or a completed first
deploy, ends it: from then on the gate asks for reviews.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import (
    applied,
    command_env,
    copy_scenario,
    fresh_database,
    query,
    run_command,
    start_command,
    wait_for,
)

pytestmark = pytest.mark.django_db(transaction=True)

APP = "firstdeploy"


@pytest.fixture
def database() -> Iterator[str]:
    with fresh_database("sm_first") as name:
        yield name


@pytest.fixture
def project(tmp_path: Path) -> Path:
    copy_scenario(APP, tmp_path)
    return tmp_path


def _env(database: str, project: Path, **extra: str) -> dict[str, str]:
    return command_env(database, apps=[APP], pythonpath=[project], extra=extra)


def _kill_in_the_middle(database: str, project: Path, command: str) -> None:
    """Start ``command`` on the empty database and kill it inside ``firstdeploy.0002``."""
    pause = project / "pause"
    pause.touch()
    proc = start_command([command], _env(database, project, SCENARIO_PAUSE_FILE=str(pause)))
    try:
        wait_for(lambda: Path(f"{pause}.reached").exists() or proc.poll() is not None, 120)
        assert proc.poll() is None, proc.communicate()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
    # The server notices the client is gone and ends its session (and the lock with it).
    wait_for(
        lambda: (
            not query(
                database,
                "SELECT 1 FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid() AND backend_type = 'client backend'",
            )
        ),
        30,
    )
    done = applied(database, APP)
    assert (APP, "0001_initial") in done
    assert (APP, "0002_pause") not in done


@pytest.mark.parametrize("command", ["safemigrate", "migrate"])
def test_an_interrupted_first_deploy_is_continued_without_reviews(
    database: str, project: Path, command: str
) -> None:
    _kill_in_the_middle(database, project, command)
    runs = query(database, "SELECT outcome, first_deploy FROM django_safemigrate_run")
    assert runs == [("running", True)]

    result = run_command(["safemigrate"], _env(database, project), expect=0)

    assert (APP, "0004_remove_item_legacy") in applied(database, APP)
    rerun = query(
        database,
        "SELECT outcome, first_deploy, ungoverned FROM django_safemigrate_run "
        "ORDER BY started_at DESC LIMIT 1",
    )[0]
    assert rerun[:2] == ("applied", True)
    assert "first deploy" in rerun[2], rerun
    assert "has not completed yet" in rerun[2], rerun
    assert "Blocked" not in result.output


def test_a_migration_applied_outside_the_first_deploy_ends_it(database: str, project: Path) -> None:
    _kill_in_the_middle(database, project, "safemigrate")
    # Applied by hand (or by a runner that keeps no ledger): the database is in use now.
    query(
        database,
        "INSERT INTO django_migrations (app, name, applied) VALUES (%s, %s, now())",
        [APP, "0002_pause"],
    )

    result = run_command(["safemigrate"], _env(database, project), expect=3)

    assert "firstdeploy.0004_remove_item_legacy" in result.err
    assert "needs a review (destructive)" in result.err
    assert (APP, "0003_item_code") not in applied(database, APP)


def test_a_completed_first_deploy_is_over(database: str, project: Path) -> None:
    run_command(["safemigrate", APP, "0002"], _env(database, project), expect=0)
    assert query(database, "SELECT outcome, first_deploy FROM django_safemigrate_run") == [
        ("applied", True)
    ]

    result = run_command(["safemigrate"], _env(database, project), expect=3)

    assert "firstdeploy.0004_remove_item_legacy" in result.err
    last = query(
        database,
        "SELECT outcome, first_deploy FROM django_safemigrate_run ORDER BY started_at DESC LIMIT 1",
    )
    assert last == [("blocked", False)]


def test_nothing_left_to_do_completes_a_first_deploy(database: str, project: Path) -> None:
    """A first deploy killed after its last migration, before its run was closed: the rerun
    has nothing to do, and completes it; the next migration is judged."""
    run_command(["safemigrate", APP, "0002"], _env(database, project), expect=0)
    # As if that run had been killed before it closed its row.
    query(database, "UPDATE django_safemigrate_run SET outcome = 'running', finished_at = NULL")

    run_command(["safemigrate", APP, "0002"], _env(database, project), expect=0)
    last = query(
        database,
        "SELECT outcome, first_deploy FROM django_safemigrate_run ORDER BY started_at DESC LIMIT 1",
    )
    assert last == [("nothing_to_do", True)]
    run_command(["safemigrate"], _env(database, project), expect=3)
