"""The migration lock, with real processes.

Many runners at once, a killed holder, a concurrent index build under waiters.
"""

from __future__ import annotations

import datetime
import os
import signal
import time
from pathlib import Path

import pytest

from django_safemigrate.execution.lock import Holder, HolderInfo, _parse_holder, lock_key
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

# Lock and crash mechanics, the same on every Django version: CI runs them in its first pass.
pytestmark = pytest.mark.once


@pytest.fixture
def database():
    with fresh_database() as name:
        yield name


def lock_sessions(database: str) -> int:
    rows = query(
        database,
        "SELECT count(*) FROM pg_stat_activity WHERE datname = %s "
        "AND application_name LIKE 'django_safemigrate lock%%'",
        [database],
    )
    return int(rows[0][0])


def test_key_depends_on_database_and_schema():
    assert lock_key("shop", "public") == lock_key("shop", "public")
    assert lock_key("shop", "public") != lock_key("shop_test", "public")
    assert lock_key("shop", "public") != lock_key("shop", "tenant1")
    assert -(2**63) <= lock_key("shop", "public") < 2**63


def test_holder_comment_round_trips_and_survives_hostile_text():
    info = HolderInfo(
        host="web-1",
        pid=42,
        command="manage.py safemigrate */ DROP TABLE x; /*",
        since=datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC),
    )
    comment = info.comment()
    assert comment.count("*/") == 1  # the command cannot close the comment early
    holder = _parse_holder(7, comment + "SELECT 1", None)
    assert holder == Holder(
        pid=7,
        host="web-1",
        runner_pid=42,
        command="manage.py safemigrate * / DROP TABLE x; /*",
        since=info.since,
    )
    assert _parse_holder(7, "<insufficient privilege>", None) == Holder(pid=7)


def test_sixteen_runners_at_once_apply_the_plan_exactly_once(database):
    env = command_env(database, module="example_site.settings")
    procs = [start_command(["safemigrate", "--noinput"], env) for _ in range(16)]
    results = [(p.wait(timeout=300), *p.communicate()) for p in procs]
    for code, out, err in results:
        assert code == 0, f"stdout:\n{out}\nstderr:\n{err}"

    rows = query(database, "SELECT app, name, count(*) FROM django_migrations GROUP BY app, name")
    assert all(count == 1 for _, _, count in rows)
    shop = [name for app, name, _ in rows if app == "shop"]
    on_disk = sorted(p.stem for p in (ROOT / "example_site" / "shop" / "migrations").glob("0*.py"))
    assert sorted(shop) == on_disk
    assert len(on_disk) >= 30

    outcomes = query(
        database, "SELECT outcome, count(*) FROM django_safemigrate_run GROUP BY outcome"
    )
    assert dict(outcomes) == {"applied": 1, "nothing_to_do": 15}
    # Each migration was recorded as applied exactly once, by the run that applied it.
    records = query(
        database,
        "SELECT app_label, name, count(*) FROM django_safemigrate_migrationrecord "
        "WHERE outcome = 'applied' GROUP BY app_label, name",
    )
    assert all(count == 1 for *_, count in records)
    assert len(records) == len(rows)
    waited = sum("Waiting for the migration lock" in err for _, _, err in results)
    assert waited >= 1


@pytest.fixture
def slow_env(tmp_path: Path, database: str):
    copy_scenario("slow", tmp_path)
    env = command_env(database, apps=["slow"], pythonpath=[tmp_path])
    run_command(["safemigrate", "slow", "0001"], env, expect=0)
    return env


def test_killed_holder_releases_the_lock_at_once(database, slow_env):
    holder = start_command(["safemigrate"], {**slow_env, "SLOW_SECONDS": "60"})
    try:
        wait_for(lambda: lock_holder_pid(database) is not None)
        waiter = start_command(
            ["safemigrate", "--lock-wait", "30"], {**slow_env, "SLOW_SECONDS": "0"}
        )
        wait_for(lambda: lock_sessions(database) == 2)
        time.sleep(0.5)  # the waiter is now polling
        killed_at = datetime.datetime.now(datetime.UTC)
        os.kill(holder.pid, signal.SIGKILL)
        code = waiter.wait(timeout=60)
        _, err = waiter.communicate()
        assert code == 0, err
    finally:
        holder.kill()
        holder.wait()

    assert applied(database, "slow") == [("slow", "0001_initial"), ("slow", "0002_takes_a_while")]
    runs = query(
        database,
        "SELECT outcome, lock_acquired_at FROM django_safemigrate_run ORDER BY id",
    )
    assert [o for o, _ in runs] == ["applied", "interrupted", "applied"]
    took = (runs[2][1] - killed_at).total_seconds()
    assert took < 1.0, f"the next runner took the lock {took:.2f}s after the kill"


def test_lock_wait_zero_fails_fast_and_names_the_holder(database, slow_env):
    holder = start_command(["safemigrate"], {**slow_env, "SLOW_SECONDS": "20"})
    try:
        wait_for(lambda: lock_holder_pid(database) is not None)
        result = run_command(["safemigrate", "--lock-wait", "0"], slow_env, expect=4)
    finally:
        holder.kill()
        holder.wait()
    assert f"pid {holder.pid}" in result.err
    assert "running 'manage.py safemigrate'" in result.err
    assert "within 0 seconds" in result.err
    assert "Nothing was applied" in result.err
    assert result.elapsed < 5  # interpreter and Django start-up included
    assert query(database, "SELECT outcome, exit_code FROM django_safemigrate_run ORDER BY id")[
        -1
    ] == ("lock_timeout", 4)


def test_waiters_do_not_block_a_concurrent_index_build(database, tmp_path):
    copy_scenario("cic_index", tmp_path)
    env = command_env(database, apps=["cic_index"], pythonpath=[tmp_path])
    run_command(["safemigrate", "cic_index", "0001"], env, expect=0)

    holder = start_command(["safemigrate"], {**env, "SLOW_SECONDS": "3"})
    wait_for(lambda: lock_holder_pid(database) is not None)
    waiters = [start_command(["safemigrate"], {**env, "SLOW_SECONDS": "0"}) for _ in range(5)]
    wait_for(lambda: lock_sessions(database) == 6, timeout=30)
    for proc in [holder, *waiters]:
        code = proc.wait(timeout=120)
        _, err = proc.communicate()
        assert code == 0, err

    index = query(
        database,
        "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
        "WHERE c.relname = 'event_kind_idx'",
    )
    assert index == [(True,)]
    outcomes = query(database, "SELECT outcome FROM django_safemigrate_run ORDER BY id")
    assert [o for (o,) in outcomes] == ["applied", "applied"] + ["nothing_to_do"] * 5


def test_next_holder_ends_the_sessions_a_killed_runner_left_running(database, tmp_path):
    copy_scenario("orphan", tmp_path)
    env = command_env(database, apps=["orphan"], pythonpath=[tmp_path])
    run_command(["safemigrate", "orphan", "0001"], env, expect=0)
    holder = start_command(["safemigrate"], {**env, "SLEEP_SECONDS": "120"})
    try:
        wait_for(
            lambda: (
                query(
                    database,
                    "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep%%'",
                )[0][0]
                == 1
            )
        )
        os.kill(holder.pid, signal.SIGKILL)
    finally:
        holder.wait()
    # The killed runner's statement still runs and its transaction still holds
    # ACCESS EXCLUSIVE on orphan_item.
    result = run_command(["safemigrate"], {**env, "SLEEP_SECONDS": "0"}, expect=0, timeout=60)
    assert "Ended 1 database session(s) left by a runner that died" in result.err
    assert result.elapsed < 30
    assert ("orphan", "0002_slow_statement") in applied(database, "orphan")
    assert query(
        database, "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep%%'"
    ) == [(0,)]
