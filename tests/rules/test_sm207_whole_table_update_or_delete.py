from __future__ import annotations

import pytest
from django.db import migrations, models

from tests.rules.judge import ZERO_DOWNTIME, flags, judge, leaves_alone

pytestmark = pytest.mark.filterwarnings(
    "ignore::django_zero_downtime_migrations.backends.postgres.schema.UnsafeOperationWarning"
)

ITEM = migrations.CreateModel(
    "Item",
    [
        ("id", models.BigAutoField(primary_key=True)),
        ("name", models.CharField(max_length=20)),
        ("note", models.CharField(max_length=20, null=True)),
    ],
)
ENGINES = pytest.mark.parametrize("engine", [None, ZERO_DOWNTIME])


def run(sql, **kwargs):
    return judge([migrations.RunSQL(sql)], setup=[ITEM], **kwargs)


@ENGINES
def test_flags_update_without_where(engine):
    finding = flags("SM207", run("UPDATE testapp_item SET note = 'x'", engine=engine))
    assert finding.severity.value == "risky"
    assert finding.table == "testapp_item"
    assert finding.lock.value == "ROW EXCLUSIVE"
    assert finding.rewrites_table is True
    assert finding.blocking
    assert finding.message.startswith("UPDATE testapp_item without WHERE")
    assert "in batches by primary key" in finding.hint


@ENGINES
def test_flags_delete_without_where_as_destructive(engine):
    finding = flags("SM207", run("DELETE FROM testapp_item", engine=engine))
    assert finding.severity.value == "destructive"
    assert finding.rewrites_table is False
    assert "delete()" in finding.hint


def test_flags_delete_using_without_where():
    flags("SM207", run("DELETE FROM testapp_item USING other"))


def test_flags_data_modifying_with_clauses():
    sql = (
        "WITH moved AS (DELETE FROM testapp_item RETURNING *) "
        "INSERT INTO archive SELECT * FROM moved"
    )
    assert flags("SM207", run(sql)).severity.value == "destructive"


def test_flags_each_statement_of_a_script():
    findings = run("UPDATE testapp_item SET note = 'x'; DELETE FROM testapp_item WHERE id < 0;")
    assert [f.sql for f in findings if f.code == "SM207"] == ["UPDATE testapp_item SET note = 'x'"]


def test_flags_the_database_side_of_separate_database_and_state():
    op = migrations.SeparateDatabaseAndState(
        database_operations=[migrations.RunSQL("UPDATE testapp_item SET note = name")]
    )
    flags("SM207", judge([op], setup=[ITEM]))


def test_an_update_of_a_small_table_does_not_block():
    findings = run("UPDATE testapp_item SET note = 'x'", tables={"testapp_item": 10})
    assert not flags("SM207", findings).blocking


def test_a_delete_of_a_small_table_still_blocks():
    # It deletes data however few rows there are.
    findings = run("DELETE FROM testapp_item", tables={"testapp_item": 10})
    assert flags("SM207", findings).blocking


def test_statements_on_a_table_created_in_the_same_migration_do_not_block():
    ops = [
        ITEM,
        migrations.RunSQL("UPDATE testapp_item SET note = 'x'"),
        migrations.RunSQL("DELETE FROM testapp_item"),
    ]
    findings = [f for f in judge(ops) if f.code == "SM207"]
    assert len(findings) == 2
    assert not any(f.blocking for f in findings)


@ENGINES
@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE testapp_item SET note = 'x' WHERE note IS NULL",
        "DELETE FROM testapp_item WHERE id IN (SELECT id FROM testapp_item LIMIT 1000)",
        "WITH gone AS (DELETE FROM testapp_item WHERE id < 10 RETURNING id) SELECT 1 FROM gone",
        "INSERT INTO testapp_item (name) VALUES ('x')",
        "SELECT count(*) FROM testapp_item",
    ],
)
def test_leaves_scoped_statements_alone(engine, sql):
    leaves_alone("SM207", run(sql, engine=engine))


@pytest.mark.parametrize("engine", [None, ZERO_DOWNTIME])
def test_leaves_djangos_own_backfill_alone(engine):
    # Making a column NOT NULL with a default: Django UPDATEs only the NULL rows, and
    # only statements written by hand are judged.
    op = migrations.AlterField("item", "note", models.CharField(max_length=20, default="-"))
    leaves_alone("SM207", judge([op], setup=[ITEM], engine=engine))
