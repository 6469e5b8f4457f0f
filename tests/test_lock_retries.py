"""Lock retries: short lock waits, tried again on a schedule, never a long queue.

A second session holds a lock on the table for real; the waits of the migration's
``ALTER TABLE`` and of the queries queued behind it are measured from
``pg_stat_activity`` and by a concurrent reader, and the outcome is read from the
catalogs and the ledger.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings
from psycopg.conninfo import make_conninfo

from django_safemigrate.conf import (
    DEFAULT_LOCK_RETRIES,
    InvalidSettings,
    parse_settings,
    schedule_seconds,
)
from django_safemigrate.enums import LockRetriesExhausted
from django_safemigrate.execution.retries import (
    Attempt,
    LockRetries,
    failed_attempts,
    safe_to_run_again,
)
from tests.helpers import (
    ROOT,
    applied,
    command_env,
    connect,
    copy_scenario,
    fresh_database,
    query,
    run_command,
    start_command,
    url_for,
    wait_for,
)

# Lock-retry schedules against real lock holders: the same on every Django version,
# so CI runs them in its first pass only.
pytestmark = pytest.mark.once

ALIASES = {"default": {}}
ALTER = "ALTER TABLE%lockretries_item%"


@pytest.fixture
def database():
    with fresh_database() as name:
        yield name


@pytest.fixture
def scenarios(tmp_path: Path) -> Path:
    for name in ("lockretries", "badoverride"):
        copy_scenario(name, tmp_path)
    return tmp_path


def environment(
    database: str, scenarios: Path, settings: dict[str, Any] | None = None, **override: Any
) -> dict[str, str]:
    extra = {"LOCKRETRIES_OVERRIDE": json.dumps(override)} if override else None
    return command_env(
        database, apps=["lockretries"], pythonpath=[scenarios], settings=settings, extra=extra
    )


class LockWatch:
    """From sessions of its own: how long each statement matching ``like`` waited for a
    lock (by ``pg_stat_activity``), and, with ``probe``, how long a plain read sent just
    after the statement queued waited behind it."""

    def __init__(self, database: str, like: str, probe: str | None = None) -> None:
        self.database = database
        self.like = like
        self.probe = probe
        #: (pid, query_start) of each waiting statement seen → the longest wait seen.
        self.waits: dict[tuple[int, Any], float] = {}
        self.probes: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run)

    @contextmanager
    def running(self) -> Iterator[LockWatch]:
        self._thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            self._thread.join()

    def waiting(self) -> bool:
        return bool(self.waits)

    def _run(self) -> None:
        with connect(self.database) as watch, connect(self.database) as reader:
            while not self._stop.is_set():
                rows = watch.execute(
                    "SELECT pid, query_start, "
                    "EXTRACT(EPOCH FROM clock_timestamp() - query_start)::float "
                    "FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock' AND query LIKE %s "
                    "AND pid <> pg_backend_pid()",
                    [self.like],
                ).fetchall()
                for pid, started, waited in rows:
                    key = (pid, started)
                    new = key not in self.waits
                    self.waits[key] = max(waited, self.waits.get(key, 0.0))
                    if new and self.probe:
                        began = time.monotonic()
                        reader.execute(self.probe).fetchall()
                        self.probes.append(time.monotonic() - began)
                time.sleep(0.005)


@contextmanager
def holding(database: str, sql: str = "SELECT count(*) FROM lockretries_item") -> Iterator[Any]:
    """A session whose open transaction holds the locks ``sql`` took (ACCESS SHARE)."""
    holder = psycopg.connect(make_conninfo(url_for(database)))
    holder.execute("SET application_name = 'reporting-job'")
    holder.execute(sql)
    try:
        yield holder
    finally:
        holder.close()


def run_held(
    args: list[str], env: dict[str, str], watch: LockWatch, holder: Any, hold: float | None
) -> tuple[str, str, int]:
    """Run ``safemigrate ARGS`` while ``holder`` keeps its locks ``hold`` seconds after
    the migration's first lock wait was seen (``None``: to the end)."""
    process = start_command(args, env)
    timer = None
    try:
        with watch.running():
            wait_for(watch.waiting, timeout=60, interval=0.005)
            if hold is not None:
                timer = threading.Timer(hold, holder.rollback)
                timer.start()
            out, err = process.communicate(timeout=300)
    finally:
        if timer is not None:
            timer.cancel()
            timer.join()
        if process.poll() is None:
            process.kill()
            process.communicate()
    return out, err, process.returncode


def sku_column(database: str) -> list[tuple[str]]:
    return query(
        database,
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_name = 'lockretries_item' AND column_name = 'sku'",
    )


def step_attempts(database: str, name: str) -> list[tuple[int]]:
    return query(
        database,
        "SELECT attempts FROM django_safemigrate_steprecord WHERE name = %s ORDER BY id",
        [name],
    )


# -- the default schedule against a real lock --------------------------------------------------


def test_default_schedule_gets_the_lock_in_short_waits(database, scenarios):
    env = environment(database, scenarios)
    run_command(["safemigrate", "lockretries", "0001"], env, expect=0)
    watch = LockWatch(database, ALTER)
    with holding(database) as holder:
        holder_pid = holder.info.backend_pid
        out, err, code = run_held(
            ["safemigrate", "lockretries", "0002"], env, watch, holder, hold=1.5
        )
    assert code == 0, out + err
    assert sku_column(database) == [("sku",)]
    # Several attempts, each recorded: the step record counts them.
    ((attempts,),) = step_attempts(database, "0002_item_sku")
    assert attempts >= 4
    lines = [line for line in err.splitlines() if "lock timeout on attempt" in line]
    assert len(lines) == attempts - 1
    assert (
        "step 1/1 transactional (lock ACCESS EXCLUSIVE): AddField: lock timeout on attempt 1 "
        "of 50 (lock_timeout 0.1s), waiting behind "
        f"pid {holder_pid} ('reporting-job', idle in transaction, transaction open "
    ) in lines[0]
    assert "AccessShareLock on lockretries_item); rolled back; next attempt in 0.05s" in lines[0]
    assert lines[0].endswith("with lock_timeout 0.1s")
    # No attempt queued much longer than its lock_timeout (0.1 s, then 0.2 s): the
    # holder's 1.5 s were spent mostly asleep, not in the table's lock queue.
    assert len(watch.waits) >= 3
    longest = max(lock for lock, _ in DEFAULT_LOCK_RETRIES[:attempts])
    assert max(watch.waits.values()) < longest + 0.25, watch.waits


def test_a_reader_never_queues_longer_than_the_attempts_lock_timeout(database, scenarios):
    settings = {"LOCK_RETRIES": [[0.3, 0.2]] * 20}
    env = environment(database, scenarios, settings)
    run_command(["safemigrate", "lockretries", "0001"], env, expect=0)
    watch = LockWatch(database, ALTER, probe="SELECT count(*) FROM lockretries_item")
    with holding(database) as holder:
        out, err, code = run_held(
            ["safemigrate", "lockretries", "0002"], env, watch, holder, hold=2.5
        )
    assert code == 0, out + err
    assert "lock timeout on attempt 3 of 20 (lock_timeout 0.3s)" in err
    # Each read arrived while the ALTER TABLE was queued for ACCESS EXCLUSIVE and
    # queued behind it (it waited), until that attempt's 0.3 s ran out.
    assert len(watch.probes) >= 3
    assert sum(1 for waited in watch.probes if waited > 0.1) >= 3, watch.probes
    assert max(watch.probes) < 0.3 + 0.2, watch.probes
    assert max(watch.waits.values()) < 0.3 + 0.2, watch.waits


# -- when the schedule runs out ---------------------------------------------------------------


def test_exhausted_schedule_stops_with_nothing_applied(database, scenarios):
    settings = {"LOCK_RETRIES": [[0.1, 0.05], [0.1, 0.05], [0.2, 0]]}
    env = environment(database, scenarios, settings)
    run_command(["safemigrate", "lockretries", "0001"], env, expect=0)
    watch = LockWatch(database, ALTER)
    with holding(database) as holder:
        out, err, code = run_held(
            ["safemigrate", "lockretries", "0002"], env, watch, holder, hold=None
        )
    assert code == 1, out + err
    assert "lock timeout on attempt 1 of 3" in err
    assert "lock timeout on attempt 2 of 3 (lock_timeout 0.1s)" in err
    assert "next attempt in 0.05s with lock_timeout 0.2s" in err
    assert "on attempt 3 of 3" not in err  # the last one is not tried again
    message = " ".join(err.split())
    assert "Applying lockretries.0002_item_sku failed: canceling statement due to lock timeout" in (
        message
    )
    assert "Each of its 3 attempts over " in message
    assert "s failed (3 lock timeouts): something held a conflicting lock" in message
    assert "SAFEMIGRATE['LOCK_RETRIES_EXHAUSTED'] = 'wait'" in message
    assert "ran in a transaction and was rolled back" in message
    # Nothing half-applied: no column, no record of the migration or of its step.
    assert sku_column(database) == []
    assert ("lockretries", "0002_item_sku") not in applied(database)
    assert step_attempts(database, "0002_item_sku") == []
    assert len(watch.waits) == 3
    (error,) = query(
        database,
        "SELECT error FROM django_safemigrate_migrationrecord "
        "WHERE name = '0002_item_sku' AND outcome = 'failed'",
    )[0]
    assert "lock timeout" in error
    assert "Each of its 3 attempts" in error
    ((outcome, exit_code, run_message),) = query(
        database,
        "SELECT outcome, exit_code, message FROM django_safemigrate_run "
        "WHERE argv LIKE %s ORDER BY id DESC LIMIT 1",
        ["%0002%"],
    )
    assert (outcome, exit_code) == ("failed", 1)
    assert "Each of its 3 attempts" in run_message


def test_exhausted_schedule_waits_when_told(database, scenarios):
    settings = {"LOCK_RETRIES": [[0.1, 0.05], [0.1, 0.05]], "LOCK_RETRIES_EXHAUSTED": "wait"}
    env = environment(database, scenarios, settings)
    result = run_command(["safemigrate", "--plan"], env, expect=0)
    assert "lock_timeout 0.1s over 2 attempts, then one without: AddField" in result.out
    run_command(["safemigrate", "lockretries", "0001"], env, expect=0)
    watch = LockWatch(database, ALTER)
    with holding(database) as holder:
        out, err, code = run_held(
            ["safemigrate", "lockretries", "0002"], env, watch, holder, hold=2.5
        )
    assert code == 0, out + err
    assert "lock timeout on attempt 2 of 3 (lock_timeout 0.1s)" in err
    assert "next attempt in 0.05s without lock_timeout (the schedule is exhausted" in err
    assert sku_column(database) == [("sku",)]
    assert step_attempts(database, "0002_item_sku") == [(3,)]
    # The third attempt queued until the holder was gone.
    waits = sorted(watch.waits.values())
    assert len(waits) == 3
    assert waits[-1] > 1.5
    assert waits[-2] < 0.35


def test_older_settings_keep_one_lock_timeout_with_backoff(database, scenarios):
    settings = {"LOCK_TIMEOUT": 0.2, "RETRIES": 2, "RETRY_BACKOFF": 0.1}
    env = environment(database, scenarios, settings)
    result = run_command(["safemigrate", "--plan"], env, expect=0)
    assert "lock ACCESS EXCLUSIVE, lock_timeout 0.2s over 3 attempts: AddField" in result.out
    run_command(["safemigrate", "lockretries", "0001"], env, expect=0)
    watch = LockWatch(database, ALTER)
    with holding(database) as holder:
        out, err, code = run_held(
            ["safemigrate", "lockretries", "0002"], env, watch, holder, hold=None
        )
    assert code == 1, out + err
    assert "on attempt 1 of 3 (lock_timeout 0.2s)" in err
    assert "next attempt in 0.1s with lock_timeout 0.2s" in err
    assert "next attempt in 0.2s with lock_timeout 0.2s" in err  # the backoff doubles
    assert "Each of its 3 attempts" in err
    assert sku_column(database) == []


# -- statements outside a transaction ---------------------------------------------------------


def deadlock_a_statement(database: str, like: str, env: dict[str, str], target: str) -> Any:
    """Run ``safemigrate lockretries TARGET`` and make its statement ``like`` lose a
    deadlock: a writer's open transaction makes the concurrent statement wait for it,
    then asks for a lock that statement holds. PostgreSQL ends the statement that
    waited first (after ``deadlock_timeout``), and the writer goes on and ends."""
    with connect(database) as writer:
        writer.execute("BEGIN")
        writer.execute("INSERT INTO lockretries_item (name) VALUES ('writer')")
        process = start_command(["safemigrate", "-v", "2", "lockretries", target], env)
        try:
            wait_for(
                lambda: query(
                    database,
                    "SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND query LIKE %s",
                    [like],
                ),
                timeout=60,
                interval=0.01,
            )
            writer.execute("LOCK TABLE lockretries_item IN SHARE MODE")
            writer.execute("ROLLBACK")
            out, err = process.communicate(timeout=300)
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate()
    return out, err, process.returncode


def test_a_concurrent_build_that_lost_a_deadlock_is_cleaned_and_built_again(database, scenarios):
    env = environment(database, scenarios)
    run_command(["safemigrate", "lockretries", "0002"], env, expect=0)
    out, err, code = deadlock_a_statement(
        database, "CREATE INDEX CONCURRENTLY%", env, "0003_item_sku_index"
    )
    assert code == 0, out + err
    assert (
        "non_transactional (lock SHARE UPDATE EXCLUSIVE): CREATE INDEX CONCURRENTLY (RunSQL): "
        "CREATE INDEX CONCURRENTLY lockretries_item_sku ON lockretries_item (sku): deadlock "
        "on attempt 1 of 50; next attempt in 0.05s"
    ) in err
    assert "dropping the INVALID index lockretries_item_sku" in out
    assert query(
        database,
        "SELECT c.relname, i.indisvalid FROM pg_index i "
        "JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname LIKE 'lockretries_item_sku%%'",
    ) == [("lockretries_item_sku", True)]
    assert step_attempts(database, "0003_item_sku_index") == [(2,)]


def test_a_statement_unsafe_to_repeat_is_not_tried_again(database, scenarios):
    env = environment(database, scenarios)
    run_command(["safemigrate", "lockretries", "0003"], env, expect=0)
    out, err, code = deadlock_a_statement(
        database, "REINDEX INDEX CONCURRENTLY%", env, "0004_reindex_name"
    )
    assert code == 1, out + err
    message = " ".join(err.split())
    assert "on attempt 1 of" not in message
    assert (
        "It hit a deadlock and was not tried again: it ran outside a transaction, and running "
        "its statement again after a failure is not safe."
    ) in message
    assert "left the INVALID index lockretries_item_name_ccnew behind" in message
    assert ("lockretries", "0004_reindex_name") not in applied(database)
    # One leftover of one attempt, named in the message; a second attempt would have
    # added lockretries_item_name_ccnew1.
    assert query(
        database,
        "SELECT c.relname, i.indisvalid FROM pg_index i "
        "JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname LIKE 'lockretries_item_name%%' "
        "ORDER BY 1",
    ) == [("lockretries_item_name", True), ("lockretries_item_name_ccnew", False)]


# -- the migration's override -----------------------------------------------------------------


def test_a_migration_can_have_its_own_schedule(database, scenarios):
    env = environment(database, scenarios, lock_retries=[[0.1, 0.05], [0.15, 0.05]])
    result = run_command(["safemigrate", "--plan"], env, expect=0)
    assert "lock_timeout 0.1s to 0.15s over 2 attempts: AddField" in result.out
    run_command(["safemigrate", "lockretries", "0001"], env, expect=0)
    watch = LockWatch(database, ALTER)
    with holding(database) as holder:
        out, err, code = run_held(
            ["safemigrate", "lockretries", "0002"], env, watch, holder, hold=None
        )
    assert code == 1, out + err
    assert "lock timeout on attempt 1 of 2 (lock_timeout 0.1s)" in err
    assert "next attempt in 0.05s with lock_timeout 0.15s" in err
    assert "Each of its 2 attempts" in err
    assert sku_column(database) == []


def test_a_migration_can_still_set_one_lock_timeout_and_retries(database, scenarios):
    env = environment(database, scenarios, lock_timeout=0.2, retries=1)
    run_command(["safemigrate", "lockretries", "0001"], env, expect=0)
    watch = LockWatch(database, ALTER)
    with holding(database) as holder:
        out, err, code = run_held(
            ["safemigrate", "lockretries", "0002"], env, watch, holder, hold=None
        )
    assert code == 1, out + err
    assert "lock timeout on attempt 1 of 2 (lock_timeout 0.2s)" in err
    assert "next attempt in 1s with lock_timeout 0.2s" in err  # RETRY_BACKOFF's default


def test_a_migration_can_wait_when_its_schedule_runs_out(database, scenarios):
    env = environment(
        database, scenarios, lock_retries=[[0.1, 0.05]], lock_retries_exhausted="wait"
    )
    run_command(["safemigrate", "lockretries", "0001"], env, expect=0)
    watch = LockWatch(database, ALTER)
    with holding(database) as holder:
        out, err, code = run_held(
            ["safemigrate", "lockretries", "0002"], env, watch, holder, hold=1.5
        )
    assert code == 0, out + err
    assert "next attempt in 0.05s without lock_timeout" in err
    assert step_attempts(database, "0002_item_sku") == [(2,)]


@pytest.mark.parametrize(
    ("override", "said"),
    [
        ({"lock_retries": "fast"}, "['lock_retries'] is 'fast', but it must be a list"),
        ({"lock_retries": []}, "['lock_retries'] has 0 pairs"),
        ({"lock_retries": [[0.1]]}, "['lock_retries'][0] is [0.1], but each item must be a pair"),
        ({"lock_retries": [[0, 1], [0.1, 0]]}, "['lock_retries'][0] has lock_timeout 0"),
        ({"lock_retries": [[0.1, -1]]}, "['lock_retries'][0]'s sleep is -1"),
        ({"lock_retries": [[0.1, 0]], "lock_timeout": 2}, "both 'lock_retries' and 'lock_timeout'"),
        ({"lock_retries_exhausted": "forever"}, "['lock_retries_exhausted'] is 'forever'"),
    ],
)
def test_invalid_migration_schedules_stop_before_anything_is_applied(
    database, scenarios, override, said
):
    env = command_env(
        database,
        apps=["badoverride"],
        pythonpath=[scenarios],
        extra={"BAD_OVERRIDE": json.dumps(override)},
    )
    for command in (["safemigrate"], ["safemigrate", "--plan"]):
        result = run_command(command, env, expect=2)
        err = " ".join(result.err.split())
        assert "Migration badoverride.0002_thing_name" in err
        assert said in err
        assert "Nothing was applied" in err
    assert applied(database) == []


# -- settings ---------------------------------------------------------------------------------


def test_the_default_schedule_starts_short_grows_and_is_bounded():
    settings = parse_settings({}, ALIASES)
    assert settings.lock_retries == DEFAULT_LOCK_RETRIES
    assert settings.lock_retries_exhausted is LockRetriesExhausted.STOP
    assert 40 <= len(DEFAULT_LOCK_RETRIES) <= 50
    assert DEFAULT_LOCK_RETRIES[0] == (0.1, 0.05)
    locks = [lock for lock, _ in DEFAULT_LOCK_RETRIES]
    assert locks == sorted(locks)
    assert schedule_seconds(DEFAULT_LOCK_RETRIES) < 180
    # A reader holding the table for 5 s never sees a lock wait above 0.1 s.
    short = 0.0
    for lock, sleep in DEFAULT_LOCK_RETRIES:
        if lock > 0.1:
            break
        short += lock + sleep
    assert short >= 5
    # README documents the same table and total.
    readme = " ".join((ROOT / "README.md").read_text().split())
    assert f"{len(DEFAULT_LOCK_RETRIES)} attempts" in readme
    total = schedule_seconds(DEFAULT_LOCK_RETRIES)
    assert f"at most {total:g} s" in readme


@pytest.mark.parametrize(
    ("value", "check_id", "said"),
    [
        ("0.1,0.5", "safemigrate.E020", "must be a list of (lock_timeout, sleep) pairs"),
        ({"0.1": 0.5}, "safemigrate.E020", "must be a list of (lock_timeout, sleep) pairs"),
        ([], "safemigrate.E020", "has 0 pairs, but it must have from 1 to 100"),
        ([[0.1, 0.1]] * 101, "safemigrate.E020", "has 101 pairs"),
        ([[0.1, 0.1], 0.5], "safemigrate.E020", "['LOCK_RETRIES'][1] is 0.5"),
        ([[0.1, 0.1, 0.1]], "safemigrate.E020", "each item must be a pair"),
        ([["0.1", 0.1]], "safemigrate.E002", "[0]'s lock_timeout must be a number"),
        ([[True, 0.1]], "safemigrate.E002", "[0]'s lock_timeout must be a number"),
        ([[0.1, -0.5]], "safemigrate.E003", "[0]'s sleep is -0.5"),
        ([[float("nan"), 0]], "safemigrate.E003", "[0]'s lock_timeout is nan"),
        ([[0.0004, 0]], "safemigrate.E003", "[0]'s lock_timeout is 0.0004"),
        ([[3_601, 0]], "safemigrate.E003", "[0]'s lock_timeout is 3601"),
        ([[0.1, 0.1], [0, 1], [0.1, 0]], "safemigrate.E020", "[1] has lock_timeout 0"),
        ([[3_600, 3_600]] * 13, "safemigrate.E020", "adds up to 90000 seconds"),
    ],
)
def test_invalid_schedules_are_refused(value, check_id, said):
    with pytest.raises(InvalidSettings) as caught:
        parse_settings({"LOCK_RETRIES": value}, ALIASES)
    (problem,) = caught.value.problems
    assert problem.check_id == check_id
    assert said in problem.message
    assert problem.hint


def test_an_invalid_schedule_is_a_system_check_error():
    with (
        override_settings(SAFEMIGRATE={"LOCK_RETRIES": [[0, 1], [0.1, 0]]}),
        pytest.raises(SystemCheckError) as info,
    ):
        call_command("check")
    assert "safemigrate.E020" in str(info.value)
    with (
        override_settings(SAFEMIGRATE={"LOCK_RETRIES_EXHAUSTED": "forever"}),
        pytest.raises(SystemCheckError) as info,
    ):
        call_command("check")
    assert "safemigrate.E021" in str(info.value)
    assert "must be 'stop' or 'wait'" in str(info.value)


def test_valid_schedules_are_parsed():
    parsed = parse_settings(
        {"LOCK_RETRIES": [(0.1, 0), [0.5, 2], (1, 0)], "LOCK_RETRIES_EXHAUSTED": "wait"}, ALIASES
    )
    assert parsed.lock_retries == ((0.1, 0.0), (0.5, 2.0), (1.0, 0.0))
    assert parsed.lock_retries_exhausted is LockRetriesExhausted.WAIT
    # A deliberate final attempt without a lock timeout.
    assert parse_settings({"LOCK_RETRIES": [[0.1, 1], [0, 0]]}, ALIASES).lock_retries == (
        (0.1, 1.0),
        (0.0, 0.0),
    )


def test_the_older_keys_alone_make_the_older_schedule():
    parsed = parse_settings(
        {"LOCK_TIMEOUT": 0.3, "RETRIES": 3, "RETRY_BACKOFF": 0.2, "RETRY_BACKOFF_MAX": 0.5},
        ALIASES,
    )
    assert parsed.lock_retries == ((0.3, 0.2), (0.3, 0.4), (0.3, 0.5), (0.3, 0.5))
    # Defaults fill the keys not given: LOCK_TIMEOUT 5, RETRY_BACKOFF 1 up to 30.
    assert parse_settings({"RETRIES": 1}, ALIASES).lock_retries == ((5.0, 1.0), (5.0, 2.0))
    assert parse_settings({"LOCK_TIMEOUT": 2}, ALIASES).lock_retries == (
        (2.0, 1.0),
        (2.0, 2.0),
        (2.0, 4.0),
        (2.0, 8.0),
        (2.0, 16.0),
        (2.0, 30.0),
    )
    assert parse_settings({"STATEMENT_TIMEOUT": 60}, ALIASES).lock_retries == (DEFAULT_LOCK_RETRIES)


def test_both_schedules_set_is_a_warning_and_lock_retries_wins():
    from django_safemigrate.checks import check_settings

    raw = {"LOCK_RETRIES": [[0.1, 0.5]], "LOCK_TIMEOUT": 3, "RETRIES": 2}
    assert parse_settings(raw, ALIASES).lock_retries == ((0.1, 0.5),)
    with override_settings(SAFEMIGRATE=raw):
        (warning,) = check_settings()
    assert warning.id == "safemigrate.W004"
    assert warning.level == 30
    assert "SAFEMIGRATE sets both LOCK_RETRIES and LOCK_TIMEOUT, RETRIES" in warning.msg
    assert "LOCK_RETRIES decides" in warning.msg
    assert "Remove LOCK_TIMEOUT, RETRIES to keep the schedule" in warning.hint
    with override_settings(SAFEMIGRATE={"LOCK_RETRIES": [[0.1, 0.5]]}):
        assert check_settings() == []


# -- the schedule, as a value -----------------------------------------------------------------


def test_attempts_follow_the_schedule_and_the_exhausted_policy():
    stop = LockRetries(((0.1, 0.05), (0.5, 1.0)))
    assert [(a.number, a.count, a.lock_timeout, a.sleep) for a in stop.attempts()] == [
        (1, 2, 0.1, 0.05),
        (2, 2, 0.5, 1.0),
    ]
    wait = LockRetries(((0.1, 0.05), (0.5, 1.0)), LockRetriesExhausted.WAIT)
    assert [(a.lock_timeout, a.sleep) for a in wait.attempts()] == [
        (0.1, 0.05),
        (0.5, 1.0),
        (0.0, 0.0),
    ]
    # A step that cannot run twice gets one attempt: the longest lock timeout, or none
    # when the schedule ends waiting.
    assert [(a.count, a.lock_timeout) for a in stop.attempts(retried=False)] == [(1, 0.5)]
    assert [(a.count, a.lock_timeout) for a in wait.attempts(retried=False)] == [(1, 0.0)]
    assert stop.describe() == "lock_timeout 0.1s to 0.5s over 2 attempts"
    assert wait.describe() == "lock_timeout 0.1s to 0.5s over 2 attempts, then one without"
    assert LockRetries(((5.0, 1.0),)).describe() == "lock_timeout 5s"


@pytest.mark.parametrize(
    ("sql", "safe"),
    [
        ("CREATE INDEX CONCURRENTLY item_sku ON item (sku)", True),
        ("CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS item_sku ON item (sku)", True),
        ("CREATE INDEX CONCURRENTLY ON item (sku)", False),  # no name to clean up
        ("DROP INDEX CONCURRENTLY item_sku", True),
        ("VACUUM item", True),
        ("REINDEX SCHEMA public", True),
        ("REINDEX INDEX CONCURRENTLY item_sku", False),
        ("REINDEX (CONCURRENTLY) TABLE item", False),
        ("ALTER TABLE measurement DETACH PARTITION m2020 CONCURRENTLY", False),
        ("DO $$ BEGIN COMMIT; END $$", False),
        ("CREATE SUBSCRIPTION s CONNECTION 'dbname=x' PUBLICATION p", False),
    ],
)
def test_which_statements_outside_a_transaction_are_tried_again(sql, safe):
    assert safe_to_run_again(sql) is safe


def test_the_failure_message_counts_the_attempts():
    last = Attempt(3, 3, 0.2, 0.0)
    told = failed_attempts(last, ["lock timeout", "deadlock", "lock timeout"], 1.04, "")
    assert told.startswith(
        "Each of its 3 attempts over 1.0s failed (2 lock timeouts and 1 deadlock)"
    )
    assert "SAFEMIGRATE['LOCK_RETRIES_EXHAUSTED'] = 'wait'" in told
    # The final attempt of "wait" has no lock timeout: no advice to wait.
    waited = failed_attempts(Attempt(2, 2, 0.0, 0.0), ["lock timeout", "deadlock"], 9.0, "")
    assert "LOCK_RETRIES_EXHAUSTED" not in waited
    # Another error after lock timeouts.
    assert failed_attempts(Attempt(3, 45, 0.1, 0.05), ["lock timeout"] * 2, 0.4, "") == (
        "It failed on attempt 3 of 45, after 2 lock timeouts (0.4s)."
    )
    assert failed_attempts(Attempt(1, 45, 0.1, 0.05), [], 0.1, "") == ""
    assert failed_attempts(Attempt(1, 1, 2.0, 0.0), ["lock timeout"], 2.0, "it ran") == (
        "It hit a lock timeout and was not tried again: it ran."
    )
