"""``atomic = False`` runs as written: each operation its own step, failures told truthfully."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import (
    applied,
    command_env,
    connect,
    copy_scenario,
    fresh_database,
    query,
    run_command,
    start_command,
    wait_for,
)


@pytest.fixture
def database():
    with fresh_database() as name:
        yield name


@pytest.fixture
def scenarios(tmp_path: Path) -> Path:
    for name in ("nonatomic", "halfwritten", "halfsql", "resumable"):
        copy_scenario(name, tmp_path)
    return tmp_path


def step_records(database: str, name: str) -> list[tuple[int, int, str, str]]:
    return query(
        database,
        "SELECT step_index, step_count, kind, description FROM django_safemigrate_steprecord "
        "WHERE name = %s ORDER BY step_index",
        [name],
    )


def validating_backend(database: str) -> int | None:
    rows = query(
        database,
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
        # The statement itself, not a ledger write whose text quotes it.
        "AND state = 'active' AND query LIKE 'ALTER TABLE%%VALIDATE CONSTRAINT%%' "
        "AND pid <> pg_backend_pid()",
    )
    return int(rows[0][0]) if rows else None


def test_not_valid_commits_before_validate_runs(database, scenarios):
    env = command_env(database, apps=["nonatomic"], pythonpath=[scenarios])
    run_command(["safemigrate", "nonatomic", "0001"], env, expect=0)
    # 300 rows at 10 ms each: the validation scans for about 3 s.
    query(database, "INSERT INTO nonatomic_order (qty) SELECT g FROM generate_series(1, 300) g")

    runner = start_command(["safemigrate", "-v", "2"], env)
    try:
        wait_for(lambda: validating_backend(database) is not None, timeout=60)
        pid = validating_backend(database)
        held = query(
            database,
            "SELECT mode FROM pg_locks WHERE pid = %s AND granted "
            "AND relation = 'nonatomic_order'::regclass",
            [pid],
        )
        modes = {mode for (mode,) in held}
        # The NOT VALID step committed: its ACCESS EXCLUSIVE lock is gone, and the
        # scan holds only SHARE UPDATE EXCLUSIVE, which lets reads and writes through.
        assert "AccessExclusiveLock" not in modes
        assert "ShareUpdateExclusiveLock" in modes
        # Another session reads and writes the table while the validation runs.
        with connect(database) as other:
            other.execute("SET lock_timeout = '1s'")
            inserted = other.execute(
                "INSERT INTO nonatomic_order (qty) VALUES (7) RETURNING qty"
            ).fetchall()
        assert inserted == [(7,)]
        assert validating_backend(database) == pid
        out, err = runner.communicate(timeout=120)
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.communicate()
    assert runner.returncode == 0, out + err
    assert query(
        database,
        "SELECT convalidated FROM pg_constraint WHERE conname = 'nonatomic_order_qty_check'",
    ) == [(True,)]
    # One step per operation, in order.
    assert [(i, n, kind) for i, n, kind, _ in step_records(database, "0002_order_qty_check")] == [
        (0, 3, "transactional"),
        (1, 3, "transactional"),
        (2, 3, "transactional"),
    ]
    assert "step 2/3 transactional" in out


def test_atomic_migrations_keep_consecutive_operations_in_one_step(database, tmp_path):
    copy_scenario("mixed", tmp_path)
    env = command_env(database, apps=["mixed"], pythonpath=[tmp_path])
    run_command(["safemigrate"], env, expect=0)
    # mixed.0002 is atomic: AddField + AddField, then the concurrent build, then RunPython.
    assert [kind for _, _, kind, _ in step_records(database, "0002_sku_index_backfill")] == [
        "transactional",
        "non_transactional",
        "transactional",
    ]


def test_plan_shows_one_step_per_operation_of_a_non_atomic_migration(database, scenarios):
    env = command_env(database, apps=["nonatomic"], pythonpath=[scenarios])
    result = run_command(["safemigrate", "--plan"], env, expect=0)
    assert "step 3/3 transactional" in result.out
    assert "RunSQL, RunSQL" not in result.out


def test_failed_autocommit_python_says_what_stays_committed(database, scenarios):
    env = command_env(database, apps=["halfwritten"], pythonpath=[scenarios])
    result = run_command(["safemigrate"], env, expect=1)
    err = " ".join(result.err.split())
    assert "Traceback" not in result.err
    assert "line 4 of the import file is malformed" in err
    assert "rolled back" not in err
    assert "ran outside a transaction" in err
    assert "step 2/2 (RunPython)" in err
    # What the function committed, counted as it committed: not the row of the block
    # it rolled back itself.
    assert "what it wrote before the error stays committed: 3 rows inserted into " in err
    assert "halfwritten_entry" in err
    assert "undo those writes or make the function skip work already done" in err
    assert query(database, "SELECT label FROM halfwritten_entry ORDER BY id") == [
        ("first",),
        ("second",),
        ("third",),
    ]
    assert ("halfwritten", "0002_import_entries") not in applied(database)
    # The first step (AddField) finished and stays recorded.
    assert [i for i, _, _, _ in step_records(database, "0002_import_entries")] == [0]


def test_failed_block_that_committed_says_so(database, scenarios):
    env = command_env(database, apps=["halfsql"], pythonpath=[scenarios])
    result = run_command(["safemigrate"], env, expect=1)
    err = " ".join(result.err.split())
    assert "Traceback" not in result.err
    assert "division by zero" in err
    assert "rolled back" not in err
    assert "ran outside a transaction" in err
    assert "what the block committed itself before the error" in err
    assert query(database, "SELECT label FROM halfsql_entry") == [("committed by the block",)]


def test_failed_concurrent_build_names_the_invalid_index_it_left(database, scenarios):
    env = command_env(database, apps=["resumable"], pythonpath=[scenarios])
    run_command(["safemigrate", "resumable", "0001"], env, expect=0)
    query(database, "INSERT INTO resumable_account (email) VALUES ('a@x'), ('a@x')")
    result = run_command(["safemigrate"], env, expect=1)
    err = " ".join(result.err.split())
    assert "Traceback" not in result.err
    assert "rolled back" not in err
    assert "ran outside a transaction" in err
    assert "left the INVALID index resumable_account_email_uniq behind" in err
