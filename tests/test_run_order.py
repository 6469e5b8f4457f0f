"""A migration's statements in run order: transactions, locks held, what each commit shows."""

from __future__ import annotations

import psycopg
import pytest
from django.db import migrations, models

from django_safemigrate.analysis.run_order import RunOrder
from django_safemigrate.enums import LockMode
from tests.helpers import connect, fresh_database, url_for
from tests.rules.judge import ZERO_DOWNTIME, backend_connection, flags, judge, judge_report

pytestmark = pytest.mark.django_db

ITEM = migrations.CreateModel(
    "Item",
    [
        ("id", models.BigAutoField(primary_key=True)),
        ("name", models.CharField(max_length=20)),
    ],
)
OTHER = migrations.CreateModel("Other", [("id", models.BigAutoField(primary_key=True))])
SETUP = [ITEM, OTHER]
LARGE = {"testapp_item": 500_000, "testapp_other": 500_000}
ADD_COLUMN = migrations.AddField("item", "note", models.IntegerField(null=True))
ADD_INDEX = migrations.AddIndex("item", models.Index(fields=["name"], name="item_name_idx"))


def order(operations, *, atomic=True, engine=None):
    report = judge_report(operations, setup=SETUP, atomic=atomic, engine=engine)
    migration = type("Migration", (migrations.Migration,), {"atomic": atomic})("0002", "testapp")
    return RunOrder(migration, report.operations, backend_connection(engine))


def transactions(run_order):
    return [p.transaction for p in run_order.placed]


def test_an_atomic_migration_is_one_transaction():
    run = order([ADD_COLUMN, ADD_INDEX])
    assert len(run.placed) == 2
    assert len(set(transactions(run))) == 1


def test_without_the_migrations_transaction_each_statement_commits():
    assert len(set(transactions(order([ADD_COLUMN, ADD_INDEX], atomic=False)))) == 2


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_the_zero_downtime_backend_runs_each_statement_on_its_own():
    # Its schema editor declines the migration's transaction.
    run = order([ADD_COLUMN, ADD_INDEX], engine=ZERO_DOWNTIME)
    assert len(set(transactions(run))) == len(run.placed)


def test_one_runsql_query_string_is_one_transaction():
    sql = migrations.RunSQL(
        [
            "ALTER TABLE testapp_item ADD COLUMN a int; CREATE INDEX a_idx ON testapp_item (a)",
            "CREATE INDEX b_idx ON testapp_item (name)",
        ],
        "",
    )
    run = order([sql], atomic=False)
    assert [p.statement.sql.split()[0] for p in run.placed] == ["ALTER", "CREATE", "CREATE"]
    first, second, third = transactions(run)
    assert first == second != third


def test_held_locks_are_the_strongest_per_table_of_the_same_transaction():
    fk = migrations.AddField(
        "item", "other", models.ForeignKey("testapp.Other", models.CASCADE, null=True)
    )
    run = order([fk, ADD_INDEX])
    index = next(p for p in run.placed if p.statement.sql.startswith('CREATE INDEX "item_name'))
    held = {h.table: h.lock for h in run.held_before(index)}
    assert held == {
        "testapp_item": LockMode.ACCESS_EXCLUSIVE,
        "testapp_other": LockMode.SHARE_ROW_EXCLUSIVE,
    }
    assert (
        order([fk, ADD_INDEX], atomic=False).held_before(
            order([fk, ADD_INDEX], atomic=False).placed[-1]
        )
        == []
    )


def test_tables_created_by_the_migration_hold_nobody():
    new = migrations.CreateModel("Fresh", [("id", models.BigAutoField(primary_key=True))])
    run = order([new, ADD_INDEX])
    assert run.created == {"testapp_fresh"}
    assert all(h.table != "testapp_fresh" for h in run.held_before(run.placed[-1]))


# --------------------------------------------------------------------------------------
# Findings see the locks held before them
# --------------------------------------------------------------------------------------


def test_an_index_built_after_add_column_blocks_reads_too():
    finding = flags("SM101", judge([ADD_COLUMN, ADD_INDEX], setup=SETUP, tables=LARGE))
    assert finding.lock is LockMode.ACCESS_EXCLUSIVE
    assert "reads and writes" in finding.message
    assert 'ADD COLUMN "note"' in finding.message
    assert finding.held_locks[0]["operation_index"] == 0


def test_an_index_built_alone_blocks_writes_only():
    finding = flags("SM101", judge([ADD_INDEX], setup=SETUP, tables=LARGE))
    assert finding.lock is LockMode.SHARE
    assert finding.held_locks == ()


def test_each_commit_releases_the_locks():
    finding = flags(
        "SM101", judge([ADD_COLUMN, ADD_INDEX], setup=SETUP, tables=LARGE, atomic=False)
    )
    assert finding.lock is LockMode.SHARE


def test_another_tables_lock_held_through_a_long_statement_is_named():
    other = migrations.AddField("other", "flag", models.IntegerField(null=True))
    finding = flags("SM101", judge([other, ADD_INDEX], setup=SETUP, tables=LARGE))
    assert finding.lock is LockMode.SHARE
    assert "Meanwhile testapp_other stays locked in ACCESS EXCLUSIVE mode" in finding.message
    assert [h["table"] for h in finding.held_locks] == ["testapp_other"]


def test_online_execution_answers_it_without_the_held_lock():
    finding = flags("SM101", judge([ADD_COLUMN, ADD_INDEX], setup=SETUP, tables=LARGE, online=True))
    assert finding.online is not None
    assert not finding.blocking
    assert finding.held_locks == ()


# --------------------------------------------------------------------------------------
# On the server: the lock of an earlier statement is held through the build
# --------------------------------------------------------------------------------------


def test_postgresql_keeps_readers_out_of_an_index_build_after_add_column():
    with fresh_database() as database:
        with connect(database) as setup:
            setup.execute("CREATE TABLE item (id bigint PRIMARY KEY, name text)")
            setup.execute("INSERT INTO item SELECT g, 'n' || g FROM generate_series(1, 1000) g")
        writer = psycopg.connect(url_for(database))
        reader = connect(database)
        try:
            writer.execute("ALTER TABLE item ADD COLUMN note integer NULL")
            writer.execute("CREATE INDEX item_name_idx ON item (name)")
            # The transaction is still open, as the migration's is while later statements run.
            reader.execute("SET lock_timeout = '200ms'")
            with pytest.raises(psycopg.errors.LockNotAvailable):
                reader.execute("SELECT count(*) FROM item")
            modes = reader.execute(
                "SELECT mode FROM pg_locks WHERE relation = 'item'::regclass AND granted"
            ).fetchall()
            assert ("AccessExclusiveLock",) in modes
        finally:
            writer.rollback()
            writer.close()
            reader.close()
        # Alone, the build lets readers through.
        writer = psycopg.connect(url_for(database))
        reader = connect(database)
        try:
            writer.execute("CREATE INDEX item_name_idx ON item (name)")
            reader.execute("SET lock_timeout = '200ms'")
            assert reader.execute("SELECT count(*) FROM item").fetchone() == (1000,)
        finally:
            writer.rollback()
            writer.close()
            reader.close()
