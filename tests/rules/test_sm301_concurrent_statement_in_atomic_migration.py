from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from django.contrib.postgres.operations import AddIndexConcurrently, RemoveIndexConcurrently
from django.db import DatabaseError, NotSupportedError, connection, migrations, models
from django.db.migrations import Migration
from django.db.migrations.state import ProjectState

from tests.rules.judge import ZERO_DOWNTIME, backend_connection, flags, judge, leaves_alone

ENGINES = pytest.mark.parametrize("engine", [None, ZERO_DOWNTIME])

ITEM = migrations.CreateModel(
    "Item",
    [("id", models.BigAutoField(primary_key=True)), ("name", models.CharField(max_length=20))],
)
INDEX = models.Index(fields=["name"], name="item_name_idx")
CONCURRENT_SQL = "CREATE INDEX CONCURRENTLY item_name_idx ON testapp_item (name)"


class AtomicRunSQL(migrations.RunSQL):
    """An operation that asks for a transaction of its own, even in a non-atomic migration."""

    atomic = True


def wraps(engine: str | None) -> bool:
    """Django's backend runs an atomic migration in a transaction; the zero-downtime one not."""
    return engine is None


@ENGINES
def test_flags_handwritten_concurrent_index_in_an_atomic_migration(engine):
    findings = judge([migrations.RunSQL(CONCURRENT_SQL)], setup=[ITEM], engine=engine)
    if not wraps(engine):
        leaves_alone("SM301", findings)
        return
    finding = flags("SM301", findings)
    assert finding.severity.value == "risky"
    assert finding.blocking
    assert finding.table == "testapp_item"
    assert finding.lock is None
    assert finding.sql == CONCURRENT_SQL
    assert finding.message.startswith("CREATE INDEX CONCURRENTLY cannot run inside a transaction")
    assert "atomic = False" in finding.hint
    assert "safemigrate" in finding.hint


@ENGINES
def test_flags_add_index_concurrently_in_an_atomic_migration(engine):
    findings = judge([AddIndexConcurrently("item", INDEX)], setup=[ITEM], engine=engine)
    if not wraps(engine):
        leaves_alone("SM301", findings)
        return
    finding = flags("SM301", findings)
    assert finding.operation == "AddIndexConcurrently"
    assert finding.table == "testapp_item"


def test_flags_remove_index_concurrently_in_an_atomic_migration():
    setup = [ITEM, migrations.AddIndex("item", INDEX)]
    findings = judge([RemoveIndexConcurrently("item", "item_name_idx")], setup=setup)
    assert flags("SM301", findings).operation == "RemoveIndexConcurrently"


@ENGINES
def test_leaves_a_non_atomic_migration_alone(engine):
    operations = [
        AddIndexConcurrently("item", INDEX),
        migrations.RunSQL(CONCURRENT_SQL.replace("item_name_idx", "other_idx")),
    ]
    leaves_alone("SM301", judge(operations, setup=[ITEM], atomic=False, engine=engine))


@ENGINES
def test_add_index_is_left_alone_whatever_the_backend_emits(engine):
    # Django's backend emits CREATE INDEX (SM101's business); the zero-downtime one emits
    # CREATE INDEX CONCURRENTLY, outside any transaction.
    leaves_alone("SM301", judge([migrations.AddIndex("item", INDEX)], setup=[ITEM], engine=engine))


@ENGINES
def test_remove_index_is_left_alone_whatever_the_backend_emits(engine):
    setup = [ITEM, migrations.AddIndex("item", INDEX)]
    findings = judge([migrations.RemoveIndex("item", "item_name_idx")], setup=setup, engine=engine)
    leaves_alone("SM301", findings)


@pytest.mark.parametrize(
    ("sql", "statement", "table"),
    [
        ("DROP INDEX CONCURRENTLY item_name_idx", "DROP INDEX CONCURRENTLY", None),
        ("REINDEX INDEX CONCURRENTLY item_name_idx", "REINDEX CONCURRENTLY", None),
        ("REINDEX TABLE CONCURRENTLY testapp_item", "REINDEX CONCURRENTLY", "testapp_item"),
        ("VACUUM (ANALYZE) testapp_item", "VACUUM", "testapp_item"),
        ("CLUSTER", "CLUSTER without a table name", None),
        ("ALTER SYSTEM SET work_mem = '64MB'", "ALTER SYSTEM", None),
        ("DO $$ BEGIN UPDATE testapp_item SET name = 'x'; COMMIT; END $$", "DO block", None),
        (
            "ALTER TABLE measurement DETACH PARTITION measurement_2020 CONCURRENTLY",
            "ALTER TABLE … DETACH PARTITION … CONCURRENTLY",
            "measurement",
        ),
    ],
)
def test_flags_every_statement_that_refuses_a_transaction(sql, statement, table):
    finding = flags("SM301", judge([migrations.RunSQL(sql)], setup=[ITEM]))
    assert finding.message.startswith(statement)
    assert finding.table == table


@pytest.mark.parametrize(
    "sql",
    [
        "CREATE INDEX i ON testapp_item (name)",
        "ANALYZE testapp_item",
        "REINDEX TABLE testapp_item",
        "CLUSTER testapp_item USING item_name_idx",
        "DO $$ BEGIN UPDATE testapp_item SET name = 'x'; END $$",
    ],
)
def test_leaves_statements_that_run_in_a_transaction_alone(sql):
    leaves_alone("SM301", judge([migrations.RunSQL(sql)], setup=[ITEM]))


@pytest.mark.parametrize(("pg_version", "fires"), [(15, False), (16, False), (17, True)])
def test_judged_for_the_server_version(pg_version, fires):
    # PostgreSQL 17 refuses ALTER SUBSCRIPTION ... SET (failover) inside a transaction.
    sql = migrations.RunSQL("ALTER SUBSCRIPTION sub SET (failover = true)")
    findings = judge([sql], pg_version=pg_version)
    assert any(f.code == "SM301" for f in findings) is fires


@pytest.mark.parametrize("pg_version", [11, 15])
def test_leaves_alter_type_add_value_to_sm303(pg_version):
    sql = migrations.RunSQL("ALTER TYPE mood ADD VALUE 'happy'")
    leaves_alone("SM301", judge([sql], pg_version=pg_version))


def test_flags_concurrent_sql_on_the_database_side_of_separate_database_and_state():
    op = migrations.SeparateDatabaseAndState(
        database_operations=[migrations.RunSQL(CONCURRENT_SQL)],
        state_operations=[migrations.AddIndex("item", INDEX)],
    )
    flags("SM301", judge([op], setup=[ITEM]))


def test_flags_add_index_concurrently_inside_separate_database_and_state():
    op = migrations.SeparateDatabaseAndState(
        database_operations=[AddIndexConcurrently("item", INDEX)],
    )
    assert flags("SM301", judge([op], setup=[ITEM])).table == "testapp_item"


@ENGINES
def test_flags_an_operation_that_asks_for_its_own_transaction(engine):
    findings = judge([AtomicRunSQL(CONCURRENT_SQL)], setup=[ITEM], atomic=False, engine=engine)
    assert "this operation in one" in flags("SM301", findings).message


@ENGINES
@pytest.mark.parametrize("atomic", [True, False])
def test_flags_a_concurrent_statement_sharing_a_query_string(engine, atomic):
    # One list item is one query string: PostgreSQL runs it as one transaction block.
    sql = migrations.RunSQL([f"SET lock_timeout = '1s'; {CONCURRENT_SQL}"])
    finding = flags("SM301", judge([sql], setup=[ITEM], atomic=atomic, engine=engine))
    if atomic and wraps(engine):
        assert "Django runs this migration in one" in finding.message
    else:
        assert "one query string" in finding.message
        assert "a list item of its own" in finding.hint


@ENGINES
def test_leaves_separate_list_items_and_a_split_string_alone(engine):
    items = migrations.RunSQL(["SET lock_timeout = '1s'", CONCURRENT_SQL])
    # A single string is split by Django: each statement is sent on its own.
    text = migrations.RunSQL(f"SET lock_timeout = '1s'; {CONCURRENT_SQL.replace('item_', 'x_')}")
    findings = judge([items, text], setup=[ITEM], atomic=False, engine=engine)
    leaves_alone("SM301", findings)


def test_leaves_a_parameterised_list_item_alone():
    sql = migrations.RunSQL([(CONCURRENT_SQL, [])])
    leaves_alone("SM301", judge([sql], setup=[ITEM], atomic=False))


def test_flags_a_parameterised_list_item_with_several_statements():
    # Django's psycopg cursor merges the parameters on the client and sends one query string.
    update = "UPDATE testapp_item SET name = %s"
    sql = migrations.RunSQL([(f"{update}; {CONCURRENT_SQL}", ["x"])])
    finding = flags("SM301", judge([sql], setup=[ITEM], atomic=False))
    assert finding.sql == CONCURRENT_SQL


# What really happens: the migrations applied the way Django's executor applies them.

APP = "sm301run"


def run_migration(
    operations: Sequence[Any], *, atomic: bool, engine: str | None, setup: Sequence[Any] = ()
) -> None:
    """Apply ``setup`` (atomic) then ``operations`` as Django's executor does."""
    conn = backend_connection(engine)
    try:
        state = ProjectState()
        for name, ops, is_atomic in (
            ("0001_setup", setup, True),
            ("0002_change", operations, atomic),
        ):
            body = {"operations": list(ops), "atomic": is_atomic}
            migration = type("Migration", (Migration,), body)(name, APP)
            with conn.schema_editor(atomic=migration.atomic) as editor:
                state = migration.apply(state, editor)
    finally:
        if conn is not connection:
            conn.close()


@pytest.fixture
def run_tables():
    yield
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {APP}_item, {APP}_a, {APP}_b CASCADE")


def indexes(table: str) -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname FROM pg_indexes WHERE tablename = %s", [table])
        return {row[0] for row in cursor.fetchall()}


def sqlstate(excinfo: pytest.ExceptionInfo[DatabaseError]) -> str | None:
    """PostgreSQL's error code behind Django's wrapped database error."""
    return getattr(excinfo.value.__cause__, "sqlstate", None)


def run_sql(sql: str) -> Any:
    return migrations.RunSQL(sql.replace("testapp_", f"{APP}_"))


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("run_tables")
class TestWhatReallyHappens:
    def test_django_fails_on_a_concurrent_statement_in_an_atomic_migration(self):
        with pytest.raises(DatabaseError) as excinfo:
            run_migration([run_sql(CONCURRENT_SQL)], atomic=True, engine=None, setup=[ITEM])
        assert sqlstate(excinfo) == "25001"  # cannot run inside a transaction block

    def test_django_refuses_add_index_concurrently_in_an_atomic_migration(self):
        with pytest.raises(NotSupportedError, match="atomic = False"):
            run_migration(
                [AddIndexConcurrently("item", INDEX)], atomic=True, engine=None, setup=[ITEM]
            )

    def test_the_zero_downtime_backend_applies_it_without_a_transaction(self):
        operations = [
            migrations.AddIndex("item", INDEX),
            AddIndexConcurrently("item", models.Index(fields=["name"], name="second_idx")),
            run_sql(CONCURRENT_SQL.replace("item_name_idx", "third_idx")),
        ]
        run_migration(operations, atomic=True, engine=ZERO_DOWNTIME, setup=[ITEM])
        assert {"item_name_idx", "second_idx", "third_idx"} <= indexes(f"{APP}_item")

    @pytest.mark.parametrize("engine", [None, ZERO_DOWNTIME])
    def test_a_query_string_with_several_statements_fails_even_without_atomic(self, engine):
        sql = migrations.RunSQL([f"SELECT 1; {CONCURRENT_SQL.replace('testapp_', f'{APP}_')}"])
        with pytest.raises(DatabaseError) as excinfo:
            run_migration([sql], atomic=False, engine=engine, setup=[ITEM])
        assert sqlstate(excinfo) == "25001"

    def test_a_parameterised_query_string_is_one_transaction_block(self):
        update = f"UPDATE {APP}_item SET name = %s"
        concurrent = CONCURRENT_SQL.replace("testapp_", f"{APP}_")
        sql = migrations.RunSQL([(f"{update}; {concurrent}", ["x"])])
        with pytest.raises(DatabaseError) as excinfo:
            run_migration([sql], atomic=False, engine=None, setup=[ITEM])
        assert sqlstate(excinfo) == "25001"

    def test_separate_list_items_run_without_atomic(self):
        sql = migrations.RunSQL(["SELECT 1", CONCURRENT_SQL.replace("testapp_", f"{APP}_")])
        run_migration([sql], atomic=False, engine=None, setup=[ITEM])
        assert "item_name_idx" in indexes(f"{APP}_item")
