"""``safemigrate`` applies migrations in steps: never half-applied, resumable, lock-bounded."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from tests.helpers import (
    applied,
    command_env,
    copy_scenario,
    fresh_database,
    query,
    run_command,
    url_for,
)

ZERO_DOWNTIME = "django_zero_downtime_migrations.backends.postgres"


@pytest.fixture
def database():
    with fresh_database() as name:
        yield name


@pytest.fixture
def scenarios(tmp_path: Path) -> Path:
    for name in ("mixed", "resumable", "basic"):
        copy_scenario(name, tmp_path)
    return tmp_path


def index_validity(database: str, name: str) -> list[tuple[bool]]:
    return query(
        database,
        "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
        "WHERE c.relname = %s",
        [name],
    )


def step_records(database: str, app: str) -> list[tuple[str, int, str]]:
    return query(
        database,
        "SELECT name, step_index, kind FROM django_safemigrate_steprecord "
        "WHERE app_label = %s ORDER BY id",
        [app],
    )


def test_concurrent_index_in_an_atomic_migration_fails_in_django_but_not_here(scenarios):
    with fresh_database() as theirs, fresh_database() as ours:
        env = command_env(theirs, apps=["mixed"], pythonpath=[scenarios])
        failed = run_command(["migrate"], env, expect=1)
        assert "cannot be executed inside a transaction" in failed.err
        assert ("mixed", "0002_sku_index_backfill") not in applied(theirs)

        env = command_env(ours, apps=["mixed"], pythonpath=[scenarios])
        result = run_command(["safemigrate"], env, expect=0)
        assert (
            "step 2/3 non_transactional (lock SHARE UPDATE EXCLUSIVE): CREATE INDEX CONCURRENTLY"
            in result.out
        )
        assert index_validity(ours, "mixed_item_sku_idx") == [(True,)]
        assert query(ours, "SELECT count(*) FROM mixed_item WHERE sku = upper(name)") == [(2000,)]
        assert applied(ours, "mixed").count(("mixed", "0002_sku_index_backfill")) == 1
        assert step_records(ours, "mixed") == [
            ("0001_initial", 0, "transactional"),
            ("0002_sku_index_backfill", 0, "transactional"),
            ("0002_sku_index_backfill", 1, "non_transactional"),
            ("0002_sku_index_backfill", 2, "transactional"),
        ]


def test_failed_concurrent_step_resumes_and_cleans_the_invalid_index(database, scenarios):
    env = command_env(database, apps=["resumable"], pythonpath=[scenarios])
    run_command(["safemigrate", "resumable", "0001"], env, expect=0)
    query(database, "INSERT INTO resumable_account (email) VALUES ('a@x'), ('a@x'), ('b@x')")

    failed = run_command(["safemigrate"], env, expect=1)
    assert "could not create unique index" in failed.err
    assert "resumable.0002_unique_email" in failed.err
    # Step 1 (the first AddField) is done and recorded; the build left an INVALID index.
    assert step_records(database, "resumable")[-1] == ("0002_unique_email", 0, "transactional")
    assert index_validity(database, "resumable_account_email_uniq") == [(False,)]
    assert ("resumable", "0002_unique_email") not in applied(database)

    query(
        database,
        "DELETE FROM resumable_account "
        "WHERE id = (SELECT max(id) FROM resumable_account WHERE email = 'a@x')",
    )
    result = run_command(["safemigrate", "-v", "2"], env, expect=0)
    # Re-running step 1 would fail: its column exists already.
    assert (
        "step 1/3 transactional (lock ACCESS EXCLUSIVE): AddField: already done, skipped"
        in result.out
    )
    assert "dropping the INVALID index resumable_account_email_uniq" in result.out
    assert index_validity(database, "resumable_account_email_uniq") == [(True,)]
    assert applied(database, "resumable") == [
        ("resumable", "0001_initial"),
        ("resumable", "0002_unique_email"),
    ]
    columns = query(
        database,
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'resumable_account'",
    )
    assert {c for (c,) in columns} == {"id", "email", "note", "verified"}


def test_partly_applied_migration_that_changed_is_refused(database, scenarios):
    env = command_env(database, apps=["resumable"], pythonpath=[scenarios])
    run_command(["safemigrate", "resumable", "0001"], env, expect=0)
    query(database, "INSERT INTO resumable_account (email) VALUES ('a@x'), ('a@x')")
    run_command(["safemigrate"], env, expect=1)
    path = scenarios / "resumable" / "migrations" / "0002_unique_email.py"
    path.write_text(path.read_text().replace("BooleanField(null=True)", "TextField(null=True)"))
    result = run_command(["safemigrate"], env, expect=3)
    assert "resumable.0002_unique_email is partly applied" in result.err
    assert "Nothing was applied" in result.err


# The retries are this app's, whatever Django's version: with Django's own backend once
# (CI's first pass); the other backend's statements on every Django.
@pytest.mark.parametrize("engine", [pytest.param(None, marks=pytest.mark.once), ZERO_DOWNTIME])
def test_lock_timeout_is_retried_and_never_stalls_other_queries(database, scenarios, engine):
    env = command_env(
        database,
        apps=["basic"],
        pythonpath=[scenarios],
        extra={"DATABASE_ENGINE": engine} if engine else None,
        settings={
            "LOCK_TIMEOUT": 0.3,
            "RETRIES": 20,
            "RETRY_BACKOFF": 0.2,
            "RETRY_BACKOFF_MAX": 0.5,
        },
    )
    run_command(["safemigrate", "basic", "0002"], env, expect=0)
    # Django's own apps too, so that the timed run below has only basic.0003 to do.
    run_command(["safemigrate", "auth"], env, expect=0)
    query(database, "INSERT INTO basic_item (name) VALUES ('one')")

    conninfo = make_conninfo(url_for(database))
    blocker = psycopg.connect(conninfo)
    blocker.execute("SELECT * FROM basic_item")  # ACCESS SHARE, held by the open transaction
    waits: list[float] = []
    stop = threading.Event()

    def reader() -> None:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            while not stop.is_set():
                started = time.monotonic()
                conn.execute("SELECT name FROM basic_item WHERE id = 1").fetchone()
                waits.append(time.monotonic() - started)
                time.sleep(0.02)

    thread = threading.Thread(target=reader)
    thread.start()
    timer = threading.Timer(3.0, blocker.rollback)
    timer.start()
    try:
        result = run_command(["safemigrate"], env, expect=0)
    finally:
        timer.cancel()
        stop.set()
        thread.join()
        blocker.close()
    assert "lock timeout on attempt 1 of 21 (lock_timeout 0.3s)" in result.err
    assert "; rolled back; next attempt in 0.2s with lock_timeout 0.3s" in result.err
    assert ("basic", "0003_item_sku") in applied(database)
    attempts = query(
        database,
        "SELECT attempts FROM django_safemigrate_steprecord WHERE name = '0003_item_sku'",
    )
    assert attempts[0][0] > 1
    # While the ALTER TABLE queued for its ACCESS EXCLUSIVE lock, reads queued behind it;
    # the short lock_timeout kept every such wait near 0.3 s.
    assert len(waits) > 20
    assert max(waits) < 1.0, f"a read waited {max(waits):.2f}s"


def test_plan_shows_the_steps_their_locks_and_timeouts_and_changes_nothing(database, scenarios):
    env = command_env(database, apps=["mixed"], pythonpath=[scenarios])
    result = run_command(["safemigrate", "--plan"], env, expect=0)
    assert "mixed.0002_sku_index_backfill" in result.out
    assert (
        "step 1/3 transactional, lock ACCESS EXCLUSIVE, lock_timeout 0.1s to 2s over 50 "
        "attempts: AddField"
    ) in result.out
    assert (
        "step 2/3 non_transactional, lock SHARE UPDATE EXCLUSIVE, no lock_timeout: "
        "CREATE INDEX CONCURRENTLY"
    ) in result.out
    assert (
        "step 3/3 transactional, no table lock, lock_timeout 0.1s to 2s over 50 attempts: RunPython"
    ) in result.out
    assert applied(database) == []


def test_steps_resume_and_cleanup_on_the_zero_downtime_backend(database, scenarios):
    env = command_env(
        database,
        apps=["mixed", "resumable"],
        pythonpath=[scenarios],
        extra={"DATABASE_ENGINE": ZERO_DOWNTIME},
    )
    run_command(["safemigrate", "resumable", "0001"], env, expect=0)
    query(database, "INSERT INTO resumable_account (email) VALUES ('a@x'), ('a@x')")
    run_command(["safemigrate"], env, expect=1)
    assert index_validity(database, "resumable_account_email_uniq") == [(False,)]
    query(
        database, "DELETE FROM resumable_account WHERE id = (SELECT max(id) FROM resumable_account)"
    )
    result = run_command(["safemigrate", "-v", "2"], env, expect=0)
    assert "dropping the INVALID index resumable_account_email_uniq" in result.out
    assert index_validity(database, "resumable_account_email_uniq") == [(True,)]
    assert index_validity(database, "mixed_item_sku_idx") == [(True,)]
    assert query(database, "SELECT count(*) FROM mixed_item WHERE sku = upper(name)") == [(2000,)]
    rows = query(database, "SELECT app, name, count(*) FROM django_migrations GROUP BY app, name")
    assert all(count == 1 for *_, count in rows)


# The pre-flight reads the server's activity, whatever Django's version: every policy once
# (CI's first pass), the one that waits on every Django.
@pytest.mark.parametrize(
    "policy",
    [
        pytest.param("stop", marks=pytest.mark.once),
        pytest.param("warn", marks=pytest.mark.once),
        "wait",
    ],
)
def test_preflight_finds_old_transactions_on_the_tables_a_step_locks(database, scenarios, policy):
    settings = {
        "PREFLIGHT": policy,
        "PREFLIGHT_MIN_AGE": 0.5,
        "PREFLIGHT_WAIT": 10,
        "LOCK_TIMEOUT": 0.5,
        "RETRIES": 20,
        "RETRY_BACKOFF": 0.2,
        "RETRY_BACKOFF_MAX": 0.5,
    }
    env = command_env(database, apps=["basic"], pythonpath=[scenarios], settings=settings)
    run_command(["safemigrate", "basic", "0002"], env, expect=0)
    run_command(["safemigrate", "auth"], env, expect=0)  # only basic.0003 is left
    blocker = psycopg.connect(make_conninfo(url_for(database)))
    blocker.execute("SET application_name = 'reporting-job'")
    blocker.execute("SELECT count(*) FROM basic_item")
    time.sleep(1.0)
    timer = threading.Timer(3.0, blocker.rollback)
    timer.start()
    try:
        result = run_command(["safemigrate"], env, expect=1 if policy == "stop" else 0)
    finally:
        timer.cancel()
        blocker.close()
    assert "'reporting-job'" in result.err
    assert "AccessShareLock on basic_item" in result.err
    assert "SELECT count(*) FROM basic_item" in result.err
    if policy == "stop":
        assert ("basic", "0003_item_sku") not in applied(database)
        assert "old transactions use the tables it locks" in result.err
    else:
        assert ("basic", "0003_item_sku") in applied(database)
    if policy == "wait":
        # It waited for the reporting job instead of queueing behind it.
        assert "lock timeout on attempt" not in result.err
    if policy == "warn":
        assert "lock timeout on attempt 1 of 21" in result.err


def test_the_ledger_keeps_each_steps_kind_lock_and_duration(database, scenarios):
    env = command_env(database, apps=["mixed"], pythonpath=[scenarios])
    run_command(["safemigrate"], env, expect=0)
    rows = query(
        database,
        "SELECT step_index, step_count, kind, lock, duration > interval '0', attempts "
        "FROM django_safemigrate_steprecord WHERE name = '0002_sku_index_backfill' "
        "ORDER BY step_index",
    )
    assert rows == [
        (0, 3, "transactional", "ACCESS EXCLUSIVE", True, 1),
        (1, 3, "non_transactional", "SHARE UPDATE EXCLUSIVE", True, 1),
        (2, 3, "transactional", "row locks", True, 1),
    ]
