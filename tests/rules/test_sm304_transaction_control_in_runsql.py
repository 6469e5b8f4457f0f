from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, migrations

from tests.rules.judge import ZERO_DOWNTIME, flags, judge, leaves_alone
from tests.rules.test_sm301_concurrent_statement_in_atomic_migration import run_migration

ENGINES = pytest.mark.parametrize("engine", [None, ZERO_DOWNTIME])


def hits(findings):
    return [f for f in findings if f.code == "SM304"]


def wraps(engine: str | None) -> bool:
    return engine is None


@ENGINES
def test_flags_begin_and_commit(engine):
    sql = migrations.RunSQL("BEGIN; UPDATE t SET a = 1; COMMIT;")
    found = hits(judge([sql], engine=engine))
    assert [f.sql for f in found] == ["BEGIN", "COMMIT"]
    assert all(f.severity.value == "risky" and f.lock is None for f in found)
    assert "Remove it" in found[0].hint
    if wraps(engine):
        assert found[0].message.startswith("BEGIN inside the transaction Django runs")
        assert found[1].message.startswith("COMMIT ends the transaction Django runs")
    else:
        assert "a transaction that Django does not manage" in found[0].message


def test_flags_rollback_in_an_atomic_migration():
    finding = flags("SM304", judge([migrations.RunSQL(["CREATE TABLE a (id int)", "ROLLBACK"])]))
    assert "records the migration as applied" in finding.message


@pytest.mark.parametrize(
    "sql",
    ["START TRANSACTION", "END", "ABORT", "COMMIT AND CHAIN", "PREPARE TRANSACTION 'x'"],
)
@pytest.mark.parametrize("atomic", [True, False])
def test_flags_every_form(sql, atomic):
    flags("SM304", judge([migrations.RunSQL(sql)], atomic=atomic))


@ENGINES
@pytest.mark.parametrize("atomic", [True, False])
def test_flags_savepoints_only_outside_a_transaction(engine, atomic):
    sql = migrations.RunSQL(["SAVEPOINT a", "UPDATE t SET a = 1", "RELEASE SAVEPOINT a"])
    found = hits(judge([sql], atomic=atomic, engine=engine))
    if atomic and wraps(engine):
        assert found == []
    else:
        assert [f.sql for f in found] == ["SAVEPOINT a", "RELEASE SAVEPOINT a"]
        assert "can only be used in transaction blocks" in found[0].message


def test_a_savepoint_after_a_handwritten_begin_is_left_to_the_begin():
    sql = migrations.RunSQL(["BEGIN", "SAVEPOINT a", "COMMIT"])
    found = hits(judge([sql], atomic=False))
    assert [f.sql for f in found] == ["BEGIN", "COMMIT"]
    assert found[0].message.startswith("BEGIN starts a transaction that Django does not manage")
    assert found[1].message.startswith("COMMIT ends a transaction that Django does not manage")


def test_flags_savepoints_in_a_query_string():
    # Several statements in one query string are an implicit block, which refuses them.
    sql = migrations.RunSQL(["SAVEPOINT a; UPDATE t SET a = 1; RELEASE SAVEPOINT a"])
    assert len(hits(judge([sql], atomic=False))) == 2


def test_flags_transaction_control_inside_separate_database_and_state():
    op = migrations.SeparateDatabaseAndState(database_operations=[migrations.RunSQL("COMMIT")])
    flags("SM304", judge([op]))


@pytest.mark.parametrize(
    "sql",
    [
        "COMMIT PREPARED 'x'",  # refuses a transaction: SM301's business
        "SET LOCAL lock_timeout = '1s'",
        "DO $$ BEGIN COMMIT; END $$",
        "SELECT 'COMMIT'",
    ],
)
def test_leaves_other_statements_alone(sql):
    leaves_alone("SM304", judge([migrations.RunSQL(sql)]))


# What really happens.


@pytest.fixture
def run_tables():
    yield
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS sm304_a, sm304_b")


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("run_tables")
class TestWhatReallyHappens:
    @staticmethod
    def tables() -> set[str]:
        with connection.cursor() as cursor:
            cursor.execute("SELECT tablename FROM pg_tables WHERE tablename LIKE 'sm304_%%'")
            return {row[0] for row in cursor.fetchall()}

    def test_commit_leaves_an_atomic_migration_half_applied(self):
        sql = migrations.RunSQL(["CREATE TABLE sm304_a (id int)", "COMMIT", "SELECT 1 / 0"])
        with pytest.raises(DatabaseError):
            run_migration([sql], atomic=True, engine=None)
        assert self.tables() == {"sm304_a"}

    def test_rollback_undoes_the_start_of_an_atomic_migration_silently(self):
        sql = migrations.RunSQL(
            ["CREATE TABLE sm304_a (id int)", "ROLLBACK", "CREATE TABLE sm304_b (id int)"]
        )
        run_migration([sql], atomic=True, engine=None)  # no error: Django would record it
        assert self.tables() == {"sm304_b"}

    def test_savepoint_fails_without_a_transaction(self):
        sql = migrations.RunSQL(["SAVEPOINT a", "RELEASE SAVEPOINT a"])
        with pytest.raises(DatabaseError) as excinfo:
            run_migration([sql], atomic=False, engine=None)
        assert getattr(excinfo.value.__cause__, "sqlstate", None) == "25P01"
        run_migration([sql], atomic=True, engine=None)
