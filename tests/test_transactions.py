"""What refuses a transaction block, checked against the PostgreSQL server the tests run on.

Every statement is run between ``BEGIN`` and ``ROLLBACK`` on a scratch database, so
nothing it would do (``ALTER SYSTEM``, ``DROP DATABASE``) ever happens: the test asserts
that the connection is inside a transaction block before each one. The answer of
:func:`refuses_transaction` for the server's own version must match what the server does:
refused with SQLSTATE 25001 ("cannot run inside a transaction block"), or 2D000 ("invalid
transaction termination") for a ``DO`` block that commits; or accepted.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from pglast import parse_sql
from psycopg.pq import TransactionStatus

from django_safemigrate.transactions import (
    added_enum_value,
    is_savepoint,
    is_transaction_control,
    refuses_transaction,
    uses_string_constant,
)
from tests.helpers import connect, fresh_database

SETUP = """
CREATE TABLE t (id int PRIMARY KEY, a int);
CREATE INDEX t_a ON t (a);
CREATE TABLE p (id int, k int) PARTITION BY RANGE (k);
CREATE TABLE p1 PARTITION OF p FOR VALUES FROM (0) TO (10);
CREATE INDEX p_k ON p (k);
CREATE TYPE mood AS ENUM ('sad', 'ok');
CREATE TABLE person (id int, m mood);
CREATE MATERIALIZED VIEW mv AS SELECT id FROM t;
CREATE UNIQUE INDEX mv_id ON mv (id)
"""

#: A subscription that never connects (created in the same transaction, rolled back).
SUBSCRIPTION = (
    "CREATE SUBSCRIPTION sub CONNECTION 'dbname=safemigrate_nowhere' "
    "PUBLICATION pub, pub2 WITH (connect = false)"
)
ENABLED_SUBSCRIPTION = (SUBSCRIPTION, "ALTER SUBSCRIPTION sub ENABLE")

# (statement, what refuses_transaction names, statements run first in the same transaction)
REFUSED: list[tuple[str, str, tuple[str, ...]]] = [
    ("CREATE INDEX CONCURRENTLY x ON t (a)", "CREATE INDEX CONCURRENTLY", ()),
    (
        "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS x ON t (a)",
        "CREATE INDEX CONCURRENTLY",
        (),
    ),
    ("DROP INDEX CONCURRENTLY t_a", "DROP INDEX CONCURRENTLY", ()),
    ("DROP INDEX CONCURRENTLY IF EXISTS nothing", "DROP INDEX CONCURRENTLY", ()),
    ("REINDEX INDEX CONCURRENTLY t_a", "REINDEX CONCURRENTLY", ()),
    ("REINDEX TABLE CONCURRENTLY t", "REINDEX CONCURRENTLY", ()),
    ("REINDEX (CONCURRENTLY) TABLE t", "REINDEX CONCURRENTLY", ()),
    ("REINDEX SCHEMA public", "REINDEX SCHEMA", ()),
    ("REINDEX DATABASE {db}", "REINDEX DATABASE", ()),
    ("REINDEX SYSTEM {db}", "REINDEX SYSTEM", ()),
    (
        "ALTER TABLE p DETACH PARTITION p1 CONCURRENTLY",
        "ALTER TABLE … DETACH PARTITION … CONCURRENTLY",
        (),
    ),
    ("VACUUM", "VACUUM", ()),
    ("VACUUM t", "VACUUM", ()),
    ("VACUUM FULL t", "VACUUM", ()),
    ("VACUUM ANALYZE t", "VACUUM", ()),
    ("VACUUM (ANALYZE, VERBOSE) t", "VACUUM", ()),
    ("CLUSTER", "CLUSTER without a table name", ()),
    ("CLUSTER VERBOSE", "CLUSTER without a table name", ()),
    ("CREATE DATABASE safemigrate_never", "CREATE DATABASE", ()),
    ("DROP DATABASE IF EXISTS safemigrate_never", "DROP DATABASE", ()),
    ("ALTER DATABASE {db} SET TABLESPACE pg_default", "ALTER DATABASE … SET TABLESPACE", ()),
    ("CREATE TABLESPACE never LOCATION '/nonexistent'", "CREATE TABLESPACE", ()),
    ("DROP TABLESPACE IF EXISTS never", "DROP TABLESPACE", ()),
    ("ALTER SYSTEM SET work_mem = '4MB'", "ALTER SYSTEM", ()),
    (
        "CREATE SUBSCRIPTION s CONNECTION 'dbname=safemigrate_nowhere' PUBLICATION pub",
        "CREATE SUBSCRIPTION … WITH (create_slot = true)",
        (),
    ),
    (
        "CREATE SUBSCRIPTION s CONNECTION 'dbname=safemigrate_nowhere' PUBLICATION pub "
        "WITH (create_slot = on, connect = 1)",
        "CREATE SUBSCRIPTION … WITH (create_slot = true)",
        (),
    ),
    (
        "DROP SUBSCRIPTION sub",
        "DROP SUBSCRIPTION of a subscription with a replication slot",
        (SUBSCRIPTION,),
    ),
    (
        "ALTER SUBSCRIPTION sub REFRESH PUBLICATION",
        "ALTER SUBSCRIPTION … REFRESH PUBLICATION",
        ENABLED_SUBSCRIPTION,
    ),
    (
        "ALTER SUBSCRIPTION sub SET PUBLICATION pub",
        "ALTER SUBSCRIPTION … PUBLICATION with refresh",
        ENABLED_SUBSCRIPTION,
    ),
    (
        "ALTER SUBSCRIPTION sub DROP PUBLICATION pub2 WITH (refresh = true)",
        "ALTER SUBSCRIPTION … PUBLICATION with refresh",
        ENABLED_SUBSCRIPTION,
    ),
    ("DISCARD ALL", "DISCARD ALL", ()),
    ("COMMIT PREPARED 'safemigrate_none'", "COMMIT PREPARED", ()),
    ("ROLLBACK PREPARED 'safemigrate_none'", "ROLLBACK PREPARED", ()),
    ("DO $$ BEGIN COMMIT; END $$", "DO block that commits or rolls back", ()),
    (
        "DO LANGUAGE plpgsql $body$ BEGIN FOR i IN 1..2 LOOP UPDATE t SET a = i; "
        "IF i > 1 THEN ROLLBACK; END IF; END LOOP; END $body$",
        "DO block that commits or rolls back",
        (),
    ),
]

ACCEPTED: list[tuple[str, tuple[str, ...]]] = [
    ("CREATE INDEX x ON t (a)", ()),
    ("CREATE UNIQUE INDEX x ON t (id)", ()),
    ("DROP INDEX t_a", ()),
    ("REINDEX INDEX t_a", ()),
    ("REINDEX TABLE t", ()),
    ("REINDEX (CONCURRENTLY false) TABLE t", ()),
    ("ALTER TABLE p DETACH PARTITION p1", ()),
    ("ANALYZE t", ()),
    ("ANALYZE", ()),
    ("CLUSTER t USING t_pkey", ()),
    ("ALTER DATABASE {db} SET work_mem = '8MB'", ()),
    ("ALTER TYPE mood ADD VALUE 'happy'", ()),  # PostgreSQL 12+
    ("ALTER TYPE mood ADD VALUE IF NOT EXISTS 'ok' BEFORE 'sad'", ()),
    ("ALTER TYPE mood RENAME VALUE 'ok' TO 'fine'", ()),
    (
        "CREATE SUBSCRIPTION s CONNECTION 'dbname=safemigrate_nowhere' PUBLICATION pub "
        "WITH (connect = false)",
        (),
    ),
    ("ALTER SUBSCRIPTION sub SET PUBLICATION pub WITH (refresh = false)", (SUBSCRIPTION,)),
    ("ALTER SUBSCRIPTION sub ADD PUBLICATION pub3 WITH (refresh = false)", ENABLED_SUBSCRIPTION),
    ("DISCARD PLANS", ()),
    ("DISCARD TEMP", ()),
    ("REFRESH MATERIALIZED VIEW CONCURRENTLY mv", ()),
    ("LOCK TABLE t IN SHARE MODE", ()),
    ("DO $$ BEGIN PERFORM 1; END $$", ()),
    ("DO $$ BEGIN RAISE NOTICE 'COMMIT'; END $$", ()),
    ("ALTER TABLE t ADD COLUMN b int", ()),
    ("UPDATE t SET a = 1", ()),
]


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[psycopg.Connection[Any], str, int]]:
    """An autocommit connection to a scratch database with SETUP committed in it."""
    with fresh_database("sm_transactions") as name, connect(name) as conn:
        for statement in SETUP.split(";"):
            conn.execute(statement)
        yield conn, name, conn.info.server_version // 10000


def run_in_transaction(
    server: tuple[psycopg.Connection[Any], str, int], statement: str, setup: tuple[str, ...] = ()
) -> str | None:
    """Run ``setup`` then ``statement`` between BEGIN and ROLLBACK: the SQLSTATE, or None."""
    conn, db, _version = server
    conn.execute("BEGIN")
    try:
        assert conn.info.transaction_status == TransactionStatus.INTRANS
        for step in setup:
            conn.execute(step)
        conn.execute(statement.format(db=db))
    except psycopg.Error as exc:
        return exc.sqlstate
    finally:
        conn.execute("ROLLBACK")
    return None


def tree(sql: str) -> Any:
    (raw,) = parse_sql(sql)
    return raw.stmt


@pytest.mark.parametrize(("statement", "reason", "setup"), REFUSED)
def test_refused_inside_a_transaction_block(server, statement, reason, setup):
    version = server[2]
    assert refuses_transaction(tree(statement.format(db="d")), version) == reason
    expected = "2D000" if statement.startswith("DO") else "25001"
    assert run_in_transaction(server, statement, setup) == expected


@pytest.mark.parametrize(("statement", "setup"), ACCEPTED)
def test_accepted_inside_a_transaction_block(server, statement, setup):
    version = server[2]
    assert refuses_transaction(tree(statement.format(db="d")), version) is None
    assert run_in_transaction(server, statement, setup) is None


def test_detach_partition_finalize_runs_in_a_transaction(server):
    """FINALIZE completes a DETACH … CONCURRENTLY that was interrupted."""
    conn, db, version = server
    conn.execute("CREATE TABLE q (k int) PARTITION BY RANGE (k)")
    conn.execute("CREATE TABLE q1 PARTITION OF q FOR VALUES FROM (0) TO (10)")
    try:
        # A reader holding a snapshot makes the detach wait; the timeout interrupts it
        # after its first transaction, leaving the partition "detach pending".
        with connect(db) as reader:
            reader.execute("BEGIN")
            reader.execute("SELECT * FROM q")
            conn.execute("SET statement_timeout = '500ms'")
            with pytest.raises(psycopg.errors.QueryCanceled):
                conn.execute("ALTER TABLE q DETACH PARTITION q1 CONCURRENTLY")
            conn.execute("RESET statement_timeout")
            reader.execute("ROLLBACK")
        pending = conn.execute(
            "SELECT inhdetachpending FROM pg_inherits WHERE inhrelid = 'q1'::regclass"
        ).fetchone()
        assert pending == (True,)
        statement = "ALTER TABLE q DETACH PARTITION q1 FINALIZE"
        assert refuses_transaction(tree(statement), version) is None
        assert run_in_transaction(server, statement) is None
    finally:
        conn.execute("DROP TABLE q, q1")


def test_drop_subscription_without_a_slot_is_accepted_but_still_reported(server):
    """Whether the subscription has a slot is in the catalog, not in the statement."""
    setup = (SUBSCRIPTION.replace("connect = false", "connect = false, slot_name = NONE"),)
    assert run_in_transaction(server, "DROP SUBSCRIPTION sub", setup) is None
    assert refuses_transaction(tree("DROP SUBSCRIPTION sub"), server[2]) is not None


def test_reindex_or_cluster_of_a_partitioned_table_is_refused_but_not_detected(server):
    """Whether the table is partitioned is in the catalog, not in the statement."""
    for statement in ("REINDEX TABLE p", "REINDEX INDEX p_k", "CLUSTER p USING p_k"):
        assert run_in_transaction(server, statement) == "25001"
        assert refuses_transaction(tree(statement), server[2]) is None


@pytest.mark.parametrize(
    ("version", "refused"), [(10, True), (11, True), (12, False), (15, False), (17, False)]
)
def test_alter_type_add_value_is_refused_before_postgresql_12(version, refused):
    # Only the server's own version can be run here (see test_accepted_… for 12+).
    reason = refuses_transaction(tree("ALTER TYPE mood ADD VALUE 'happy'"), version)
    assert (reason == "ALTER TYPE … ADD VALUE (before PostgreSQL 12)") is refused
    assert refuses_transaction(tree("ALTER TYPE mood RENAME VALUE 'a' TO 'b'"), version) is None


def test_alter_subscription_failover_is_refused_from_postgresql_17():
    statement = tree("ALTER SUBSCRIPTION sub SET (failover = true)")
    assert refuses_transaction(statement, 16) is None
    assert refuses_transaction(statement, 17) == "ALTER SUBSCRIPTION … SET (failover)"


def test_a_new_enum_value_cannot_be_used_before_commit(server):
    """PostgreSQL 12+: ADD VALUE runs in a transaction, but the value is unusable there."""
    if server[2] < 12:
        pytest.skip("before PostgreSQL 12, ADD VALUE is refused outright")
    add = ("ALTER TYPE mood ADD VALUE 'happy'",)
    assert run_in_transaction(server, "SELECT 'happy'::mood", add) == "55P04"
    assert run_in_transaction(server, "INSERT INTO person VALUES (1, 'happy')", add) == "55P04"
    assert run_in_transaction(server, "INSERT INTO person VALUES (1, 'ok')", add) is None
    # A type created in the same transaction: refused on PostgreSQL 15 (checked
    # here), allowed on 18 (the embedded server); other versions are not asserted.
    fresh = ("CREATE TYPE mood2 AS ENUM ('a')", "ALTER TYPE mood2 ADD VALUE 'b'")
    observed = {15: "55P04", 18: None}
    result = run_in_transaction(server, "SELECT 'b'::mood2", fresh)
    if server[2] in observed:
        assert result == observed[server[2]]
    else:
        assert result in ("55P04", None)


def test_several_statements_in_one_query_string_are_one_transaction_block(server):
    """What a RunSQL list item with several statements becomes (simple query protocol)."""
    conn = server[0]
    cursor = psycopg.ClientCursor(conn)
    assert conn.info.transaction_status == TransactionStatus.IDLE
    with pytest.raises(psycopg.errors.ActiveSqlTransaction):
        cursor.execute("SELECT 1; CREATE INDEX CONCURRENTLY x ON t (a)")
    cursor.execute("CREATE INDEX CONCURRENTLY x ON t (a)")  # alone, in autocommit: fine
    cursor.execute("DROP INDEX CONCURRENTLY x")


def test_a_do_block_that_commits_runs_outside_a_transaction(server):
    conn = server[0]
    conn.execute("DO $$ BEGIN UPDATE t SET a = 1; COMMIT; END $$")


CONTROL = [
    ("BEGIN", True, False),
    ("START TRANSACTION ISOLATION LEVEL SERIALIZABLE", True, False),
    ("COMMIT", True, False),
    ("END", True, False),
    ("COMMIT AND CHAIN", True, False),
    ("ROLLBACK", True, False),
    ("ABORT", True, False),
    ("SAVEPOINT a", True, True),
    ("RELEASE SAVEPOINT a", True, True),
    ("ROLLBACK TO SAVEPOINT a", True, True),
    ("PREPARE TRANSACTION 'x'", True, False),
    ("COMMIT PREPARED 'x'", False, False),
    ("ROLLBACK PREPARED 'x'", False, False),
    ("SET LOCAL lock_timeout = '1s'", False, False),
    ("SELECT 1", False, False),
]


@pytest.mark.parametrize(("statement", "control", "savepoint"), CONTROL)
def test_transaction_control(statement, control, savepoint):
    assert is_transaction_control(tree(statement)) is control
    assert is_savepoint(tree(statement)) is savepoint


def test_commit_and_rollback_end_the_surrounding_transaction(server):
    conn = server[0]
    for statement in ("COMMIT", "END", "ROLLBACK", "ABORT"):
        conn.execute("BEGIN")
        conn.execute(statement)
        assert conn.info.transaction_status == TransactionStatus.IDLE, statement


@pytest.mark.parametrize("statement", ["SAVEPOINT a", "RELEASE SAVEPOINT a", "ROLLBACK TO a"])
def test_savepoints_fail_outside_a_transaction_block(server, statement):
    conn = server[0]
    with pytest.raises(psycopg.errors.NoActiveSqlTransaction):
        conn.execute(statement)
    assert run_in_transaction(server, statement, ("SAVEPOINT a",)) is None


def test_added_enum_value():
    assert added_enum_value(tree("ALTER TYPE s.mood ADD VALUE IF NOT EXISTS 'x' AFTER 'a'")) == "x"
    assert added_enum_value(tree("ALTER TYPE mood RENAME VALUE 'a' TO 'b'")) is None
    assert added_enum_value(tree("SELECT 'x'")) is None


@pytest.mark.parametrize(
    ("sql", "uses"),
    [
        ("SELECT 'x'::mood", True),
        ("INSERT INTO person VALUES (1, 'x')", True),
        ("UPDATE person SET m = 'ok' WHERE m = ANY (ARRAY['x'])", True),
        ("ALTER TABLE person ALTER COLUMN m SET DEFAULT 'x'", True),
        ("UPDATE person SET x = 'ok'", False),  # a column named x
        ('SELECT "x" FROM person', False),
        ("DO $$ BEGIN PERFORM 'x'::mood; END $$", False),  # inside a body: not looked into
    ],
)
def test_uses_string_constant(sql, uses):
    assert uses_string_constant(tree(sql), "x") is uses
