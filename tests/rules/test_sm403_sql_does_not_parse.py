from __future__ import annotations

import pytest
from django.db import migrations, models

from tests.rules.judge import ZERO_DOWNTIME, flags, judge, leaves_alone

ITEM = migrations.CreateModel(
    "Item",
    [("id", models.BigAutoField(primary_key=True)), ("name", models.CharField(max_length=20))],
)
ENGINES = pytest.mark.parametrize("engine", [None, ZERO_DOWNTIME])


@ENGINES
def test_flags_sql_the_parser_rejects(engine):
    sql = migrations.RunSQL("UPDAT testapp_item SET name = 'x'")
    finding = flags("SM403", judge([sql], setup=[ITEM], engine=engine))
    assert finding.severity.value == "risky"
    assert finding.message == (
        'PostgreSQL\'s parser rejects this statement: syntax error at or near "UPDAT", at index 0.'
    )
    assert finding.sql == "UPDAT testapp_item SET name = 'x'"
    assert "fails at deploy" in finding.hint


def test_flags_sql_on_the_database_side_of_separate_database_and_state():
    op = migrations.SeparateDatabaseAndState(
        database_operations=[migrations.RunSQL("ALTER TABLE testapp_item ADD COLUMN")]
    )
    flags("SM403", judge([op], setup=[ITEM]))


def test_flags_sql_with_parameters_that_does_not_parse_once_bound():
    sql = migrations.RunSQL([("UPDATE testapp_item SET name = %s WHERE", ["x"])])
    flags("SM403", judge([sql], setup=[ITEM]))


def test_flags_a_parameter_missing_from_the_placeholders():
    sql = migrations.RunSQL([("UPDATE testapp_item SET name = %(name)s", {"other": "x"})])
    flags("SM403", judge([sql], setup=[ITEM]))


@ENGINES
@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE testapp_item SET name = 'x' WHERE id = 1",
        "CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $$ BEGIN RETURN 1; END; $$",
        "SELECT 1; SELECT 2;",
        [("UPDATE testapp_item SET name = %s WHERE id = %s", ["x", 1])],
        [("UPDATE testapp_item SET name = %(name)s WHERE id = %(id)s", {"name": "x", "id": 1})],
        [("SELECT 10 %% 3 WHERE %s", [True])],
    ],
    ids=["statement", "dollar_quoted", "script", "params", "named_params", "escaped_percent"],
)
def test_leaves_sql_that_parses_alone(engine, sql):
    leaves_alone("SM403", judge([migrations.RunSQL(sql)], setup=[ITEM], engine=engine))


@ENGINES
def test_leaves_the_sql_of_schema_operations_alone(engine):
    ops = [
        migrations.AddField("item", "note", models.TextField(null=True)),
        migrations.AddIndex("item", models.Index(fields=["name"], name="item_name_idx")),
        migrations.AlterField("item", "name", models.CharField(max_length=40)),
    ]
    leaves_alone("SM403", judge(ops, setup=[ITEM], engine=engine, atomic=False))
