from __future__ import annotations

import threading
import time

import psycopg
import pytest
from django.db import connection, migrations
from django.db.migrations.operations.base import Operation

from django_safemigrate.analysis.database import table_sizes
from tests.helpers import connect, fresh_database
from tests.rules.judge import flags, judge, leaves_alone

DETACH = "ALTER TABLE events DETACH PARTITION events_2020"
EVENTS = (
    "CREATE TABLE events (id int, at date) PARTITION BY RANGE (at)",
    "CREATE TABLE events_2020 PARTITION OF events FOR VALUES FROM ('2020-01-01') TO ('2021-01-01')",
    "CREATE TABLE events_2021 PARTITION OF events FOR VALUES FROM ('2021-01-01') TO ('2022-01-01')",
)


def test_flags_detach_partition_without_concurrently():
    finding = flags("SM112", judge([migrations.RunSQL(DETACH)]))
    assert finding.severity.value == "risky"
    assert finding.table == "events"
    assert finding.lock.value == "ACCESS EXCLUSIVE"
    assert finding.rewrites_table is False
    assert finding.blocking
    assert finding.message == (
        "DETACH PARTITION events_2020 takes an ACCESS EXCLUSIVE lock on events: it waits for "
        "the queries running on the table, and every query after it, reads included, waits "
        "behind it."
    )
    assert (
        "migrations.RunSQL('ALTER TABLE events DETACH PARTITION events_2020 CONCURRENTLY') in "
        "a migration with atomic = False" in finding.hint
    )
    assert "finish it with ALTER TABLE events DETACH PARTITION events_2020 FINALIZE" in (
        finding.hint
    )


def test_hint_keeps_the_names_as_written():
    sql = 'ALTER TABLE IF EXISTS "Metrics".events DETACH PARTITION "Metrics"."Events 2020"'
    finding = flags("SM112", judge([migrations.RunSQL(sql)]))
    assert finding.table == "events"
    assert (
        'ALTER TABLE IF EXISTS "Metrics".events DETACH PARTITION "Metrics"."Events 2020" '
        "CONCURRENTLY" in finding.hint
    )


def test_before_postgresql_14_there_is_no_concurrent_form():
    finding = flags("SM112", judge([migrations.RunSQL(DETACH)], pg_version=13))
    assert "PostgreSQL 13 has no DETACH PARTITION ... CONCURRENTLY (it came in 14)" in (
        finding.hint
    )
    assert "RunSQL" not in finding.hint


def test_hint_says_concurrently_is_refused_while_the_table_has_a_default_partition():
    with connection.cursor() as cursor:
        for statement in EVENTS:
            cursor.execute(statement)
        cursor.execute("CREATE TABLE events_other PARTITION OF events DEFAULT")
    finding = flags("SM112", judge([migrations.RunSQL(DETACH)]))
    assert "refuses it while events has a default partition, as it has on this database" in (
        finding.hint
    )


@pytest.mark.parametrize(
    "sql",
    [
        f"{DETACH} CONCURRENTLY",
        f"{DETACH} FINALIZE",
        "ALTER TABLE events ATTACH PARTITION "
        "events_2020 FOR VALUES FROM ('2020-01-01') TO ('2021-01-01')",
    ],
)
def test_leaves_concurrent_and_finalizing_detach_alone(sql):
    leaves_alone("SM112", judge([migrations.RunSQL(sql)], atomic=False))


def test_concurrent_detach_in_an_atomic_migration_is_a_transaction_problem():
    findings = judge([migrations.RunSQL(f"{DETACH} CONCURRENTLY")])
    leaves_alone("SM112", findings)
    flags("SM301", findings)


def test_a_table_created_in_the_same_migration_does_not_block():
    findings = judge([migrations.RunSQL([*EVENTS, DETACH])])
    assert not flags("SM112", findings).blocking


def test_a_small_partitioned_table_does_not_block():
    assert not flags("SM112", judge([migrations.RunSQL(DETACH)], tables={"events": 10})).blocking
    assert flags("SM112", judge([migrations.RunSQL(DETACH)], tables={"events": 10**6})).blocking


def test_a_partitioned_table_counts_the_rows_of_its_partitions():
    with connection.cursor() as cursor:
        for statement in EVENTS:
            cursor.execute(statement)
        cursor.execute(
            "CREATE TABLE events_2022 PARTITION OF events FOR VALUES FROM ('2022-01-01') "
            "TO ('2023-01-01') PARTITION BY RANGE (id)"
        )
        cursor.execute(
            "CREATE TABLE events_2022_low PARTITION OF events_2022 FOR VALUES FROM (0) TO (100)"
        )
        cursor.execute(
            "INSERT INTO events SELECT g, date '2020-01-01' + g FROM generate_series(1, 30) g"
        )
        cursor.execute("INSERT INTO events VALUES (1, '2022-05-01'), (2, '2022-06-01')")
        cursor.execute("ANALYZE events")
    sizes = table_sizes(connection)
    assert sizes["events_2020"].rows == 30
    # Two levels down, too.
    assert sizes["events_2022"].rows == 2
    assert sizes["events"].rows == 32
    assert sizes["events"].bytes == sum(
        sizes[name].bytes for name in ("events_2020", "events_2021", "events_2022_low")
    )


class DetachEvents(Operation):
    """A third-party operation that detaches through the schema editor."""

    reduces_to_sql = True

    def state_forwards(self, app_label, state):
        pass

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        schema_editor.execute(DETACH)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        raise NotImplementedError

    def describe(self):
        return "Detach the 2020 events"


@pytest.mark.parametrize("operation", [migrations.RunSQL(DETACH), DetachEvents()])
def test_online_execution_has_no_form_for_it(operation):
    """safemigrate runs the detach as written: the finding stands, and it is not a refusal
    of an online form (SM111)."""
    report = judge_online([operation])
    finding = flags("SM112", report.findings)
    assert finding.online is None
    assert finding.blocking
    leaves_alone("SM111", report.findings)
    assert report.online == {}


def judge_online(operations):
    from tests.rules.judge import judge_report

    return judge_report(operations, tables={"events": 10**6}, online=True)


# -- on PostgreSQL ----------------------------------------------------------------------------


def _partitioned(conn: psycopg.Connection) -> None:
    for statement in EVENTS:
        conn.execute(statement)
    conn.execute("INSERT INTO events VALUES (1, '2020-06-01'), (2, '2021-06-01')")


def _relation_locks(conn: psycopg.Connection, pid: int) -> list[tuple[str, str, bool]]:
    return conn.execute(
        "SELECT c.relname, l.mode, l.granted FROM pg_locks l "
        "JOIN pg_class c ON c.oid = l.relation "
        "WHERE l.pid = %s AND c.relname LIKE 'events%%' ORDER BY 1",
        [pid],
    ).fetchall()


class Waiting:
    """Runs ``sql`` on ``conn`` in a thread until it waits for a lock (seen from ``observer``)."""

    def __init__(self, conn: psycopg.Connection, sql: str, observer: psycopg.Connection) -> None:
        self.errors: list[BaseException] = []
        self.thread = threading.Thread(target=self._run, args=(conn, sql))
        self.thread.start()
        deadline = time.monotonic() + 10
        pid = conn.info.backend_pid
        while not observer.execute(
            "SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = %s", [pid]
        ).fetchone()[0]:
            assert time.monotonic() < deadline, f"{sql} never waited for a lock"
            time.sleep(0.05)

    def _run(self, conn: psycopg.Connection, sql: str) -> None:
        try:
            conn.execute(sql)
        except BaseException as exc:  # finish() reports it
            self.errors.append(exc)

    def finish(self) -> None:
        self.thread.join(10)
        assert not self.thread.is_alive()
        assert self.errors == []


def test_postgresql_detach_partition_locks_reads_out():
    with fresh_database() as name, connect(name) as detacher, connect(name) as reader:
        _partitioned(detacher)
        with detacher.transaction():
            detacher.execute(DETACH)
            assert _relation_locks(reader, detacher.info.backend_pid) == [
                ("events", "AccessExclusiveLock", True),
                ("events_2020", "AccessExclusiveLock", True),
            ]
            reader.execute("SET lock_timeout = '200ms'")
            with pytest.raises(psycopg.errors.LockNotAvailable):
                reader.execute("SELECT count(*) FROM events")


def test_postgresql_a_waiting_detach_partition_queues_reads_behind_it():
    """One open transaction that read the table: the DETACH waits for it, and a later plain
    SELECT waits behind the DETACH."""
    with (
        fresh_database() as name,
        connect(name) as detacher,
        connect(name) as old,
        connect(name) as reader,
    ):
        _partitioned(detacher)
        old.execute("BEGIN")
        old.execute("SELECT count(*) FROM events")
        waiting = Waiting(detacher, DETACH, reader)
        try:
            assert ("events", "AccessExclusiveLock", False) in _relation_locks(
                reader, detacher.info.backend_pid
            )
            reader.execute("SET lock_timeout = '200ms'")
            with pytest.raises(psycopg.errors.LockNotAvailable):
                reader.execute("SELECT count(*) FROM events")
        finally:
            old.execute("COMMIT")
            waiting.finish()


def test_postgresql_detach_concurrently_lets_reads_and_writes_through():
    """DETACH … CONCURRENTLY refuses a transaction block and asks for SHARE UPDATE EXCLUSIVE
    on the partitioned table: waiting for it (behind a session holding that lock), it
    lets later reads and writes through, then completes."""
    with (
        fresh_database() as name,
        connect(name) as detacher,
        connect(name) as holder,
        connect(name) as other,
    ):
        _partitioned(detacher)
        with pytest.raises(psycopg.errors.ActiveSqlTransaction), detacher.transaction():
            detacher.execute(f"{DETACH} CONCURRENTLY")
        holder.execute("BEGIN")
        holder.execute("LOCK TABLE events IN SHARE UPDATE EXCLUSIVE MODE")
        waiting = Waiting(detacher, f"{DETACH} CONCURRENTLY", other)
        try:
            assert ("events", "ShareUpdateExclusiveLock", False) in _relation_locks(
                other, detacher.info.backend_pid
            )
            other.execute("SET lock_timeout = '200ms'")
            assert other.execute("SELECT count(*) FROM events").fetchone() == (2,)
            other.execute("INSERT INTO events VALUES (3, '2021-07-01')")
        finally:
            holder.execute("COMMIT")
            waiting.finish()
        assert other.execute("SELECT count(*) FROM events").fetchone() == (2,)
        assert other.execute(
            "SELECT count(*) FROM pg_inherits WHERE inhrelid = 'events_2020'::regclass"
        ).fetchone() == (0,)
