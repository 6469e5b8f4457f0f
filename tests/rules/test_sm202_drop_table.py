from __future__ import annotations

import pytest
from django.db import migrations, models
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
