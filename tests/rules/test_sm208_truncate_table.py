from __future__ import annotations

import pytest
from django.db import migrations, models

from tests.rules.judge import ZERO_DOWNTIME, flags, judge, leaves_alone

ITEM = migrations.CreateModel(
    "Item",
    [("id", models.BigAutoField(primary_key=True)), ("name", models.CharField(max_length=20))],
)
ENGINES = pytest.mark.parametrize("engine", [None, ZERO_DOWNTIME])


def run(sql, **kwargs):
    return judge([migrations.RunSQL(sql)], setup=[ITEM], **kwargs)


@ENGINES
def test_flags_truncate(engine):
    finding = flags("SM208", run("TRUNCATE testapp_item", engine=engine))
    assert finding.severity.value == "destructive"
    assert finding.table == "testapp_item"
    assert finding.lock.value == "ACCESS EXCLUSIVE"
    assert finding.rewrites_table is False
    assert finding.blocking
    assert finding.message == "TRUNCATE testapp_item deletes every row of the table."
    assert "safemigrate_acknowledge" in finding.hint


def test_flags_every_table_and_says_what_cascade_does():
    findings = [
        f
        for f in run("TRUNCATE TABLE ONLY testapp_item, public.other CASCADE")
        if f.code == "SM208"
    ]
    assert sorted(f.table for f in findings) == ["other", "testapp_item"]
    assert all("CASCADE empties every table that references it" in f.message for f in findings)


def test_a_small_table_still_blocks():
    assert flags("SM208", run("TRUNCATE testapp_item", tables={"testapp_item": 3})).blocking


def test_truncating_a_table_created_in_the_same_migration_does_not_block():
    findings = judge([ITEM, migrations.RunSQL("TRUNCATE testapp_item")])
    assert not flags("SM208", findings).blocking


def test_flags_the_database_side_of_separate_database_and_state():
    op = migrations.SeparateDatabaseAndState(
        database_operations=[migrations.RunSQL("TRUNCATE testapp_item")]
    )
    flags("SM208", judge([op], setup=[ITEM]))


@ENGINES
@pytest.mark.parametrize(
    "sql",
    ["DELETE FROM testapp_item WHERE id < 100", "DROP TABLE testapp_item", "SELECT 1"],
)
def test_leaves_other_statements_alone(engine, sql):
    leaves_alone("SM208", run(sql, engine=engine))


@ENGINES
def test_leaves_schema_operations_alone(engine):
    ops = [migrations.DeleteModel("Item")]
    leaves_alone("SM208", judge(ops, setup=[ITEM], engine=engine))
