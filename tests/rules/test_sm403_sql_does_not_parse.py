from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, migrations, models
from pglast import parse_sql

from django_safemigrate.analysis.rules.sm403_sql_does_not_parse.columns import (
    output_name,
    output_names,
)
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


# -- columns assigned or declared twice ---------------------------------------------------------

LONG = "a" * 63
TWICE = 'multiple assignments to same column "{}"'
SPECIFIED = 'column "{}" specified more than once'
MATCH = "MERGE INTO k USING k AS j ON k.id = j.id WHEN "

#: (statement, PostgreSQL 15's error, or None when it accepts the statement)
COLUMN_CASES = [
    ("UPDATE k SET a = 1, a = 2", TWICE.format("a")),
    ("UPDATE k SET b = 0, a = 1, A = 2, b = 3", TWICE.format("a")),
    ('UPDATE k SET "a" = 1, "A" = 2', None),
    ("UPDATE k SET (a, b) = (1, 2), a = 3", TWICE.format("a")),
    ("UPDATE k SET arr[1] = 1, arr[2] = 2", None),
    ("UPDATE k SET arr[1] = 1, arr[1] = 2", None),
    ("UPDATE k SET arr = '{}', arr[1] = 2", TWICE.format("arr")),
    ("UPDATE k SET arr[1] = 2, arr = '{}'", TWICE.format("arr")),
    ("UPDATE k SET r.x = 1, r.y = 2", None),
    ("UPDATE k SET r = ROW(1, 2), r.x = 1", TWICE.format("r")),
    (f"UPDATE k SET {LONG}x = 1, {LONG}y = 2", TWICE.format(LONG)),
    ("INSERT INTO k (id, a, a) VALUES (1, 1, 2)", SPECIFIED.format("a")),
    ("INSERT INTO k (id, arr[1], arr[2]) VALUES (1, 1, 2)", None),
    ("INSERT INTO k (id, arr, arr[2]) VALUES (1, '{}', 2)", SPECIFIED.format("arr")),
    (
        "INSERT INTO k (id) VALUES (1) ON CONFLICT (id) DO UPDATE SET a = 1, a = 2",
        TWICE.format("a"),
    ),
    ("INSERT INTO k (id) VALUES (1) ON CONFLICT (id) DO UPDATE SET a = 1, b = 2", None),
    (f"{MATCH}MATCHED THEN UPDATE SET a = 1, a = 2", TWICE.format("a")),
    (f"{MATCH}MATCHED THEN UPDATE SET r.x = 1, r.y = 2", None),
    (f"{MATCH}NOT MATCHED THEN INSERT (id, a, a) VALUES (1, 1, 2)", SPECIFIED.format("a")),
    ("CREATE TABLE t (a int, a text)", SPECIFIED.format("a")),
    ('CREATE TABLE t (a int, "A" text)', None),
    ("CREATE FOREIGN TABLE ft (a int, a text) SERVER nowhere", SPECIFIED.format("a")),
    (
        "ALTER TABLE k ADD COLUMN c int, ADD COLUMN c text",
        'column "c" of relation "k" already exists',
    ),
    ("ALTER TABLE k ADD COLUMN c int, ADD COLUMN IF NOT EXISTS c int", None),
    (
        "ALTER TABLE k ADD COLUMN IF NOT EXISTS c int, ADD COLUMN c int",
        'column "c" of relation "k" already exists',
    ),
    ("CREATE VIEW v (a, a) AS SELECT 1, 2", SPECIFIED.format("a")),
    ("CREATE VIEW v AS SELECT 1 AS a, 2 AS a", SPECIFIED.format("a")),
    ("CREATE VIEW v AS SELECT 1, 2", SPECIFIED.format("?column?")),
    ("CREATE VIEW v (a, b) AS SELECT 1 AS a, 2 AS a", None),
    ("CREATE VIEW v (x) AS SELECT 1 AS a, 2 AS x", SPECIFIED.format("x")),
    ("CREATE VIEW v AS SELECT k.a, j.a FROM k, k AS j", SPECIFIED.format("a")),
    ("CREATE VIEW v AS SELECT count(*), count(id) FROM k", SPECIFIED.format("count")),
    ("CREATE VIEW v AS SELECT a::text, b::text FROM k", None),
    ("CREATE VIEW v AS SELECT 1::text, 2::text", SPECIFIED.format("text")),
    ("CREATE VIEW v AS SELECT (SELECT 1)::text, 2::text", None),
    ("CREATE VIEW v AS SELECT 1 AS a, 2 AS b UNION SELECT 3 AS c, 4 AS c", None),
    ("CREATE VIEW v AS SELECT 1 AS a, 2 AS a UNION SELECT 3, 4", SPECIFIED.format("a")),
    ("CREATE VIEW v AS SELECT k.*, 1 AS x FROM k", None),
    ("CREATE VIEW v (column1, column1) AS VALUES (1, 2)", SPECIFIED.format("column1")),
    ("CREATE VIEW v (column2) AS VALUES (1, 2)", SPECIFIED.format("column2")),
    ("CREATE TABLE t (a) AS SELECT 1 AS a, 2 AS a", SPECIFIED.format("a")),
    ("CREATE MATERIALIZED VIEW mv AS SELECT 1 AS a, 2 AS a", SPECIFIED.format("a")),
    ("SELECT 1 AS a, 2 AS a INTO z", SPECIFIED.format("a")),
    ("SELECT 1 AS a, 2 AS a", None),
]


@pytest.fixture
def k_table():
    """The table the statements use (in the test's transaction, so nothing stays)."""
    with connection.cursor() as cursor:
        cursor.execute("CREATE TYPE kr AS (x int, y int)")
        cursor.execute(
            'CREATE TABLE k (id int PRIMARY KEY, a int, "A" int, b int, arr int[], r kr, '
            f"{LONG} int)"
        )


def _postgresql_error(sql):
    """PostgreSQL's error for ``sql`` (run and rolled back), or ``None``."""
    with connection.cursor() as cursor:
        cursor.execute("SAVEPOINT attempt")
        try:
            cursor.execute(sql)
        except DatabaseError as exc:
            return exc.__cause__.diag.message_primary
        finally:
            cursor.execute("ROLLBACK TO SAVEPOINT attempt")
    return None


@pytest.mark.parametrize(("sql", "error"), COLUMN_CASES)
def test_reports_a_column_assigned_or_declared_twice_as_postgresql_does(k_table, sql, error):
    assert _postgresql_error(sql) == error
    findings = judge([migrations.RunSQL(sql)], atomic=False)
    if error is None:
        leaves_alone("SM403", findings)
        return
    finding = flags("SM403", findings)
    assert finding.message == f"PostgreSQL rejects this statement before running it: {error}."
    assert "Assign or name each column once" in finding.hint


def test_reports_a_column_assigned_twice_once_parameters_are_bound():
    sql = migrations.RunSQL([("UPDATE testapp_item SET name = %s, name = %s", ["a", "b"])])
    finding = flags("SM403", judge([sql], setup=[ITEM]))
    assert finding.message == (
        "PostgreSQL rejects this statement before running it: multiple assignments to same "
        'column "name".'
    )


#: Select-list expressions and the column name PostgreSQL gives them.
NAMED = [
    "1",
    "a",
    "k.a",
    "(a)",
    "-a",
    "a + 1",
    "a IS NULL",
    "a IS DISTINCT FROM 1",
    "NOT true",
    "a BETWEEN 1 AND 2",
    "a IN (1, 2)",
    "a = ANY (ARRAY[1])",
    "count(*)",
    "pg_catalog.lower('x')",
    "a::text",
    "1::int",
    "'1 day'::interval",
    "interval '1 day'",
    "'x' COLLATE \"C\"",
    "(SELECT 1)",
    "(SELECT b FROM k LIMIT 1)",
    "(SELECT 1)::text",
    "(SELECT 1 AS u UNION SELECT 2)",
    "EXISTS (SELECT 1)",
    "ARRAY(SELECT 1)",
    "1 < ALL (SELECT 1)",
    "ARRAY[1]",
    "ROW(1, 2)",
    "(1, 2)",
    "coalesce(a, 1)",
    "greatest(1, 2)",
    "least(1, 2)",
    "nullif(1, 2)",
    "CASE WHEN true THEN a END",
    "CASE WHEN true THEN 1 ELSE a END",
    "CASE WHEN true THEN 1 ELSE 2 END",
    "CASE WHEN true THEN 1 ELSE 2 END::text",
    "arr[1]",
    "(r).x",
    "(r).y::text",
    "current_date",
    "current_time",
    "current_timestamp(0)",
    "localtime",
    "localtimestamp",
    "current_user",
    "session_user",
    "user",
    "current_role",
    "current_schema",
    "current_catalog",
    "xmlelement(name foo)",
    "xmlconcat('<a/>'::xml)",
    "xmlserialize(content '<a/>'::xml AS text)",
    "'<a/>'::xml IS DOCUMENT",
]


@pytest.mark.parametrize("expression", NAMED)
def test_derives_the_column_names_postgresql_derives(k_table, expression):
    sql = f"SELECT {expression} FROM k"
    with connection.cursor() as cursor:
        cursor.execute(sql)
        expected = cursor.description[0].name
    target = parse_sql(sql)[0].stmt.targetList[0]
    assert output_name(target.val) == expected


@pytest.mark.parametrize(
    "expression", ["extract(year FROM now())", "trim(' x ')", "substring('abc' FROM 2)", "k.*"]
)
def test_does_not_guess_names_it_is_not_sure_of(expression):
    names = output_names(parse_sql(f"SELECT {expression} FROM k")[0].stmt)
    assert names is not None
    assert not isinstance(names[0], str)
