from __future__ import annotations

import os

import pytest
from django.db import InternalError, connection, connections, migrations, models
from django_zero_downtime_migrations.backends.postgres.schema import DatabaseSchemaEditor

from tests.rules.judge import ZERO_DOWNTIME, flags, judge, leaves_alone

pytestmark = pytest.mark.filterwarnings(
    "ignore::django_zero_downtime_migrations.backends.postgres.schema.UnsafeOperationWarning"
)

TAG = migrations.CreateModel("Tag", [("id", models.BigAutoField(primary_key=True))])
ITEM = migrations.CreateModel(
    "Item",
    [
        ("id", models.BigAutoField(primary_key=True)),
        ("name", models.CharField(max_length=20)),
        ("tags", models.ManyToManyField("testapp.Tag")),
    ],
)
SETUP = [TAG, ITEM]
ENGINES = pytest.mark.parametrize("engine", [None, ZERO_DOWNTIME])


def tables(code, findings):
    return sorted(f.table for f in findings if f.code == code)


@ENGINES
def test_flags_delete_model_and_its_through_table(engine):
    findings = judge([migrations.DeleteModel("Item")], setup=SETUP, engine=engine)
    finding = flags("SM202", findings)
    assert finding.severity.value == "destructive"
    assert finding.lock.value == "ACCESS EXCLUSIVE"
    assert finding.rewrites_table is False
    assert finding.blocking
    assert finding.sql.startswith("DROP TABLE")
    assert "SeparateDatabaseAndState" in finding.hint
    assert tables("SM202", findings) == ["testapp_item", "testapp_item_tags"]


@ENGINES
def test_flags_the_through_table_of_a_removed_many_to_many(engine):
    findings = judge([migrations.RemoveField("item", "tags")], setup=SETUP, engine=engine)
    assert tables("SM202", findings) == ["testapp_item_tags"]


def test_flags_handwritten_drop_table_of_each_table():
    sql = migrations.RunSQL("DROP TABLE IF EXISTS public.testapp_item, other CASCADE")
    findings = judge([sql], setup=SETUP)
    assert tables("SM202", findings) == ["other", "testapp_item"]
    assert "DROP TABLE testapp_item" in flags("SM202", findings).message


def test_flags_the_database_side_of_separate_database_and_state():
    op = migrations.SeparateDatabaseAndState(
        database_operations=[migrations.RunSQL("DROP TABLE testapp_item")],
        state_operations=[migrations.DeleteModel("Item")],
    )
    assert tables("SM202", judge([op], setup=SETUP)) == ["testapp_item"]


@ENGINES
def test_leaves_state_only_removal_alone(engine):
    op = migrations.SeparateDatabaseAndState(state_operations=[migrations.DeleteModel("Item")])
    leaves_alone("SM202", judge([op], setup=SETUP, engine=engine))


@pytest.mark.parametrize(
    "sql",
    [
        "DROP VIEW testapp_view",
        "DROP INDEX CONCURRENTLY testapp_item_name",
        "DROP SEQUENCE testapp_seq",
        "ALTER TABLE testapp_item DROP COLUMN name",
    ],
)
def test_leaves_other_drops_alone(sql):
    leaves_alone("SM202", judge([migrations.RunSQL(sql)], setup=SETUP, atomic=False))


@ENGINES
def test_leaves_remove_of_a_plain_field_alone(engine):
    leaves_alone(
        "SM202", judge([migrations.RemoveField("item", "name")], setup=SETUP, engine=engine)
    )


def test_dropping_a_table_created_in_the_same_migration_does_not_block():
    findings = judge([TAG, ITEM, migrations.DeleteModel("Item")])
    assert all(not f.blocking for f in findings if f.code == "SM202")
    flags("SM202", findings)


def test_judged_from_the_operation_when_the_sql_cannot_be_rendered(monkeypatch):
    # Offline, the zero-downtime backend cannot introspect the constraints it drops
    # first; the analysis then has only the operation.
    def refuse(self, model):
        raise RuntimeError("connection refused")

    monkeypatch.setattr(DatabaseSchemaEditor, "delete_model", refuse)
    findings = judge([migrations.DeleteModel("Item")], setup=SETUP, engine=ZERO_DOWNTIME)
    assert tables("SM202", findings) == ["testapp_item", "testapp_item_tags"]
    assert flags("SM202", findings).sql is None


def test_fallback_follows_the_database_side_only(monkeypatch):
    def refuse(self, model, field):
        raise RuntimeError("connection refused")

    monkeypatch.setattr(DatabaseSchemaEditor, "remove_field", refuse)
    dropped = migrations.SeparateDatabaseAndState(
        database_operations=[migrations.RemoveField("item", "tags")]
    )
    kept = migrations.SeparateDatabaseAndState(
        state_operations=[migrations.RemoveField("item", "tags")]
    )
    assert tables("SM202", judge([dropped], setup=SETUP, engine=ZERO_DOWNTIME)) == [
        "testapp_item_tags"
    ]
    leaves_alone("SM202", judge([kept], setup=SETUP, engine=ZERO_DOWNTIME))


def test_fallback_leaves_an_unmanaged_model_alone(monkeypatch):
    def refuse(self, model):
        raise RuntimeError("connection refused")

    monkeypatch.setattr(DatabaseSchemaEditor, "delete_model", refuse)
    legacy = migrations.CreateModel(
        "Legacy",
        [("id", models.BigAutoField(primary_key=True))],
        options={"managed": False, "db_table": "legacy"},
    )
    op = migrations.SeparateDatabaseAndState(
        database_operations=[migrations.DeleteModel("Legacy"), migrations.DeleteModel("Item")]
    )
    findings = judge([op], setup=[*SETUP, legacy], engine=ZERO_DOWNTIME)
    assert tables("SM202", findings) == ["testapp_item", "testapp_item_tags"]


# -- many tables at once: DROP SCHEMA … CASCADE, DROP DATABASE ----------------------------------


@pytest.mark.parametrize(
    "sql", ["DROP DATABASE archive", 'drop database if exists "archive" with (force)']
)
def test_flags_drop_database(sql):
    finding = flags("SM202", judge([migrations.RunSQL(sql)], atomic=False))
    assert finding.severity.value == "destructive"
    assert finding.blocking
    assert finding.message == (
        "DROP DATABASE archive deletes the whole database archive: every table and every row "
        "in it, with no way back."
    )
    assert "by hand, outside the deploy" in finding.hint


def test_flags_drop_schema_cascade_of_each_schema():
    sql = migrations.RunSQL("DROP SCHEMA IF EXISTS archive, staging CASCADE")
    findings = [f for f in judge([sql]) if f.code == "SM202"]
    assert [f.message.split(" CASCADE")[0] for f in findings] == [
        "DROP SCHEMA archive",
        "DROP SCHEMA staging",
    ]
    # Neither schema is on the database: what they hold is not known.
    assert "its tables and all their rows among them)" in findings[0].message
    assert all(f.blocking and f.severity.value == "destructive" for f in findings)
    assert "plain DROP SCHEMA archive, which refuses" in findings[0].hint


def test_names_the_tables_of_the_dropped_schema():
    with connection.cursor() as cursor:
        cursor.execute("CREATE SCHEMA archive")
        cursor.execute("CREATE TABLE archive.orders (id int)")
        cursor.execute("CREATE TABLE archive.events (id int, at date) PARTITION BY RANGE (at)")
        cursor.execute(
            "CREATE TABLE archive.events_2020 PARTITION OF archive.events "
            "FOR VALUES FROM ('2020-01-01') TO ('2021-01-01')"
        )
        cursor.execute("CREATE VIEW archive.recent AS SELECT id FROM archive.orders")
        cursor.execute("CREATE SCHEMA empty")
        cursor.execute("CREATE VIEW empty.nothing AS SELECT 1 AS one")
    finding = flags("SM202", judge([migrations.RunSQL("DROP SCHEMA archive CASCADE")]))
    # Partitions go with their table; views hold no rows.
    assert "(its tables and all their rows among them: events, orders)" in finding.message
    assert finding.blocking
    finding = flags("SM202", judge([migrations.RunSQL("DROP SCHEMA empty CASCADE")]))
    assert "(on this database it holds no table)" in finding.message
    assert not finding.blocking


@pytest.mark.parametrize(
    "sql", ["DROP SCHEMA archive", "DROP SCHEMA IF EXISTS archive RESTRICT", "DROP VIEW v CASCADE"]
)
def test_leaves_drops_that_refuse_to_take_tables_along_alone(sql):
    leaves_alone("SM202", judge([migrations.RunSQL(sql)]))


def test_postgresql_drop_schema_keeps_tables_unless_cascade():
    with connection.cursor() as cursor:
        cursor.execute("CREATE SCHEMA scratch_archive")
        cursor.execute("CREATE TABLE scratch_archive.orders (id int)")
        cursor.execute("INSERT INTO scratch_archive.orders VALUES (1)")
        cursor.execute("SAVEPOINT plain")
        with pytest.raises(InternalError, match="cannot drop schema scratch_archive because"):
            cursor.execute("DROP SCHEMA scratch_archive")
        cursor.execute("ROLLBACK TO SAVEPOINT plain")
        cursor.execute("SELECT count(*) FROM scratch_archive.orders")
        assert cursor.fetchone() == (1,)
        cursor.execute("DROP SCHEMA scratch_archive CASCADE")
        cursor.execute("SELECT to_regclass('scratch_archive.orders')")
        assert cursor.fetchone() == (None,)


def test_postgresql_drop_database_deletes_it():
    name = f"scratch_drop_{os.getpid()}"
    other = connections.create_connection("default")
    try:
        with other.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{name}"')
            cursor.execute(f'DROP DATABASE "{name}"')
            cursor.execute("SELECT count(*) FROM pg_database WHERE datname = %s", [name])
            assert cursor.fetchone() == (0,)
    finally:
        with other.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}"')
        other.close()
