"""The recovery-point check before destructive migrations (``SAFEMIGRATE['BACKUP_CHECK']``).

Real commands against a real PostgreSQL. The test server runs with ``archive_mode = off``
(checked first), so the check through ``pg_stat_archiver`` always finds WAL archiving off.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import applied, command_env, copy_scenario, fresh_database, query, run_command

#: Nothing here depends on the Django version: run once, in CI's first pass.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.once]

APP = "bk_shop"


@pytest.fixture
def database() -> Iterator[str]:
    with fresh_database("sm_bk") as name:
        yield name


@pytest.fixture
def project(tmp_path: Path) -> Path:
    copy_scenario(APP, tmp_path)
    return tmp_path


def _env(database: str, project: Path, **settings: Any) -> dict[str, str]:
    return command_env(
        database, apps=[APP], pythonpath=[project], settings={"REVIEW": "never", **settings}
    )


def _deployed(database: str, project: Path) -> None:
    """The first deploy (0001), with rows: later runs are not a new database."""
    run_command(["safemigrate", APP, "0001", "-v", "0"], _env(database, project), expect=0)
    query(database, "INSERT INTO bk_shop_item (name, legacy) VALUES ('a', 'x'), ('b', 'y')")


def _ours(database: str) -> list[str]:
    return [name for _, name in applied(database, APP)]


def _last_run(database: str) -> tuple[Any, ...]:
    return query(
        database,
        "SELECT command, outcome, exit_code, recovery_check FROM django_safemigrate_run "
        "ORDER BY id DESC LIMIT 1",
    )[0]


def test_the_test_server_does_not_archive_wal(database):
    assert query(database, "SELECT current_setting('archive_mode')") == [("off",)]


def test_stop_applies_nothing_of_a_plan_with_a_destructive_migration(database, project):
    _deployed(database, project)
    result = run_command(["safemigrate"], _env(database, project, BACKUP_CHECK="stop"), expect=3)
    assert "WAL archiving is off (archive_mode = off)" in result.err
    assert "bk_shop.0003_remove_item_legacy" in result.err
    assert "Nothing was applied" in result.err
    # Not even the safe 0002 before it: the check runs before anything of the plan.
    assert _ours(database) == ["0001_initial"]
    columns = query(
        database,
        "SELECT attname FROM pg_attribute WHERE attrelid = 'bk_shop_item'::regclass "
        "AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
    )
    assert columns == [("id",), ("name",), ("legacy",)]
    command, outcome, code, check = _last_run(database)
    assert (command, outcome, code) == ("safemigrate", "blocked", 3)
    assert check == "stopped (pg_stat_archiver): WAL archiving is off (archive_mode = off)"


def test_plain_migrate_stops_too_with_its_own_exit_code(database, project):
    _deployed(database, project)
    result = run_command(["migrate"], _env(database, project, BACKUP_CHECK="stop"), expect=1)
    assert "archive_mode = off" in result.err
    assert _ours(database) == ["0001_initial"]
    assert _last_run(database)[:2] == ("migrate", "blocked")


def test_warn_says_what_is_wrong_and_goes_on(database, project):
    _deployed(database, project)
    result = run_command(["safemigrate"], _env(database, project, BACKUP_CHECK="warn"), expect=0)
    assert "WAL archiving is off (archive_mode = off)" in result.err
    assert "Going on" in result.err
    assert _ours(database)[-1] == "0004_delete_tag"
    assert _last_run(database)[1:] == (
        "applied",
        0,
        "warned (pg_stat_archiver): WAL archiving is off (archive_mode = off)",
    )


def test_a_recent_recovery_point_from_the_callable_passes(database, project):
    _deployed(database, project)
    env = _env(database, project, BACKUP_CHECK="stop", BACKUP_CALLABLE=f"{APP}.backups.recent")
    result = run_command(["safemigrate"], env, expect=0)
    assert "Warning" not in result.err
    assert _ours(database)[-1] == "0004_delete_tag"
    check = _last_run(database)[3]
    assert check.startswith(f"passed (BACKUP_CALLABLE {APP}.backups.recent): last recovery point")


def test_an_old_recovery_point_stops(database, project):
    _deployed(database, project)
    env = _env(
        database,
        project,
        BACKUP_CHECK="stop",
        BACKUP_CALLABLE=f"{APP}.backups.old",
        BACKUP_MAX_AGE=3600,
    )
    result = run_command(["safemigrate"], env, expect=3)
    assert "last recovery point 3 days ago" in result.err
    assert "older than BACKUP_MAX_AGE (1 hour)" in result.err
    assert _ours(database) == ["0001_initial"]


def test_a_raising_callable_stops_with_its_error_named(database, project):
    _deployed(database, project)
    env = _env(database, project, BACKUP_CHECK="stop", BACKUP_CALLABLE=f"{APP}.backups.broken")
    result = run_command(["safemigrate"], env, expect=3)
    assert f"{APP}.backups.broken raised RuntimeError: the snapshot API answered 503" in result.err
    assert _ours(database) == ["0001_initial"]
    assert "RuntimeError" in _last_run(database)[3]


def test_a_plan_without_destructive_migrations_never_runs_the_check(database, project):
    _deployed(database, project)
    env = _env(database, project, BACKUP_CHECK="stop", BACKUP_CALLABLE=f"{APP}.backups.broken")
    run_command(["safemigrate", APP, "0002"], env, expect=0)
    assert _ours(database) == ["0001_initial", "0002_item_note"]
    assert _last_run(database)[3] is None


def test_a_new_database_is_not_checked(database, project):
    env = _env(database, project, BACKUP_CHECK="stop")
    run_command(["safemigrate"], env, expect=0)
    assert _ours(database)[-1] == "0004_delete_tag"
    assert _last_run(database)[3] is None


@pytest.mark.parametrize(
    ("settings", "code", "words"),
    [
        ({"BACKUP_CHECK": "always"}, "safemigrate.E030", "'off', 'warn' or 'stop'"),
        ({"BACKUP_MAX_AGE": 0}, "safemigrate.E031", "more than 0"),
        ({"BACKUP_CALLABLE": f"{APP}.backups.missing"}, "safemigrate.E031", "cannot be imported"),
        ({"BACKUP_CALLABLE": f"{APP}.backups.NOT_CALLABLE"}, "safemigrate.E031", "not a callable"),
    ],
)
def test_bad_values_are_system_check_errors(database, project, settings, code, words):
    result = run_command(["check"], _env(database, project, **settings), expect=1)
    assert code in result.err
    assert words in result.err


def test_plan_names_the_check_without_running_it(database, project):
    _deployed(database, project)
    env = _env(database, project, BACKUP_CHECK="stop", BACKUP_CALLABLE=f"{APP}.backups.broken")
    result = run_command(["safemigrate", "--plan"], env, expect=0)
    assert (
        "Recovery-point check (BACKUP_CHECK = 'stop'): the run checks for a recent recovery "
        "point before applying anything, for bk_shop.0003_remove_item_legacy, "
        "bk_shop.0004_delete_tag." in result.out
    )
    assert "raised" not in result.output
