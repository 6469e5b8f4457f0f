from __future__ import annotations

import pytest
from django.contrib.postgres.operations import RemoveIndexConcurrently
from django.db import OperationalError, connection, connections, migrations, models
from django.db.migrations import Migration
from django.db.migrations.state import ProjectState

from django_safemigrate.sql import render_migration
from tests.rules.judge import APP, ZERO_DOWNTIME, backend_connection, flags, judge, leaves_alone

INDEX = models.Index(fields=["name"], name="item_name_idx")
ITEM = migrations.CreateModel(
    "Item",
    [
        ("id", models.BigAutoField(primary_key=True)),
        ("name", models.CharField(max_length=20)),
        ("code", models.IntegerField(db_index=True)),
    ],
    options={"indexes": [INDEX]},
)
NO_DB_INDEX = migrations.AlterField("item", "code", models.IntegerField())


def _create_on_database(*operations):
    """Create the tables of ``operations`` on the test database (so introspection sees them)."""
    setup = type("Migration", (Migration,), {"operations": list(operations)})("0001_setup", APP)
    with connection.schema_editor() as editor:
        setup.apply(ProjectState(), editor)


@pytest.mark.parametrize("engine", [None, ZERO_DOWNTIME])
def test_remove_index_is_judged_by_the_sql_of_each_backend(engine):
    findings = judge([migrations.RemoveIndex("item", "item_name_idx")], setup=[ITEM], engine=engine)
    if engine == ZERO_DOWNTIME:
        # The zero-downtime backend emits DROP INDEX CONCURRENTLY IF EXISTS itself.
        leaves_alone("SM102", findings)
        return
    finding = flags("SM102", findings)
    assert finding.table == "testapp_item"
    assert finding.lock.value == "ACCESS EXCLUSIVE"
    assert finding.rewrites_table is False
    assert finding.blocking
    assert finding.sql == 'DROP INDEX IF EXISTS "item_name_idx"'
    assert "item_name_idx" in finding.message
    assert "RemoveIndexConcurrently" in finding.hint
    assert 'DROP INDEX CONCURRENTLY IF EXISTS "item_name_idx"' in finding.hint


def test_flags_alter_field_that_removes_db_index():
    # Django finds the index to drop by introspection, so the table must exist.
    _create_on_database(ITEM)
    finding = flags("SM102", judge([NO_DB_INDEX], setup=[ITEM]))
    assert finding.table == "testapp_item"
    assert finding.sql.startswith('DROP INDEX IF EXISTS "testapp_item_code_')


@pytest.mark.django_db(transaction=True)
def test_zero_downtime_backend_drops_a_field_index_concurrently():
    # The zero-downtime backend renders on a connection of its own, which only sees
    # committed tables.
    _create_on_database(ITEM)
    try:
        leaves_alone("SM102", judge([NO_DB_INDEX], setup=[ITEM], engine=ZERO_DOWNTIME))
        state = ProjectState()
        setup = type("Migration", (Migration,), {"operations": [ITEM]})("0001_setup", APP)
        change = type("Migration", (Migration,), {"operations": [NO_DB_INDEX]})("0002", APP)
        zero_downtime = backend_connection(ZERO_DOWNTIME)
        try:
            rendered, _ = render_migration(change, setup.mutate_state(state), zero_downtime)
        finally:
            zero_downtime.close()
        sql = [statement.sql for op in rendered for statement in op.statements]
        assert sql == ['DROP INDEX CONCURRENTLY IF EXISTS "testapp_item_code_532d3307"']
    finally:
        with connection.cursor() as cursor:
            cursor.execute('DROP TABLE IF EXISTS "testapp_item"')


@pytest.mark.parametrize(
    "sql",
    [
        "DROP INDEX item_name_idx",
        "drop index  if exists\n  public.item_name_idx",
        'DROP INDEX "item_name_idx" CASCADE',
    ],
)
def test_flags_handwritten_drop_index(sql):
    finding = flags("SM102", judge([migrations.RunSQL(sql)], setup=[ITEM]))
    # The table comes from the index declared in the project state.
    assert finding.table == "testapp_item"


def test_flags_every_index_of_one_statement():
    sql = migrations.RunSQL("DROP INDEX a_idx, b_idx")
    finding = flags("SM102", judge([sql], setup=[ITEM]))
    assert "a_idx, b_idx" in finding.message
    assert finding.table is None
    assert finding.blocking


def test_leaves_concurrent_drops_alone():
    findings = judge(
        [
            RemoveIndexConcurrently("item", "item_name_idx"),
            migrations.RunSQL("drop index concurrently if exists item_name_idx"),
        ],
        setup=[ITEM],
        atomic=False,
    )
    leaves_alone("SM102", findings)


def test_leaves_other_drops_alone():
    findings = judge([migrations.RunSQL("DROP TABLE t; DROP VIEW v; DROP SEQUENCE s")])
    leaves_alone("SM102", findings)


def test_index_of_a_table_created_in_the_same_migration_does_not_block():
    findings = judge([ITEM, migrations.RemoveIndex("item", "item_name_idx")])
    assert not flags("SM102", findings).blocking


def test_index_of_a_small_table_does_not_block():
    findings = judge(
        [migrations.RemoveIndex("item", "item_name_idx")],
        setup=[ITEM],
        tables={"testapp_item": 10},
    )
    assert not flags("SM102", findings).blocking


def test_postgresql_queues_reads_behind_a_drop_index():
    """While DROP INDEX holds its lock, a second session's plain SELECT waits."""
    first = connections.create_connection("default")
    second = connections.create_connection("default")
    try:
        with first.cursor() as setup:
            setup.execute("CREATE TABLE scratch_drop (n int, m int)")
            setup.execute("CREATE INDEX scratch_drop_n ON scratch_drop (n)")
        try:
            first.set_autocommit(False)
            with first.cursor() as drop, second.cursor() as reader:
                drop.execute("DROP INDEX scratch_drop_n")
                reader.execute("SET lock_timeout = '200ms'")
                with pytest.raises(OperationalError, match="lock timeout"):
                    reader.execute("SELECT * FROM scratch_drop WHERE m = 1")
            first.rollback()
        finally:
            first.set_autocommit(True)
            with first.cursor() as cleanup:
                cleanup.execute("DROP TABLE scratch_drop")
    finally:
        first.close()
        second.close()
