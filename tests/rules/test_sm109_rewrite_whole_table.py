from __future__ import annotations

import pytest
from django.db import connection, connections, migrations, models

from tests.rules.judge import flags, judge, leaves_alone

ITEM = migrations.CreateModel("Item", [("id", models.BigAutoField(primary_key=True))])


def run(sql):
    return judge([migrations.RunSQL(sql)], setup=[ITEM], atomic=False)


@pytest.mark.parametrize(
    ("sql", "tables"),
    [
        ("VACUUM FULL testapp_item", ["testapp_item"]),
        ("vacuum (full, analyze)  testapp_item, other", ["testapp_item", "other"]),
        ("VACUUM (FULL true) testapp_item", ["testapp_item"]),
        ("VACUUM (FULL 1, VERBOSE) public.testapp_item", ["testapp_item"]),
        ("VACUUM FULL", [None]),
        ("CLUSTER testapp_item USING testapp_item_pkey", ["testapp_item"]),
        ("cluster testapp_item", ["testapp_item"]),
        ("CLUSTER", [None]),
        ("ALTER TABLE testapp_item SET TABLESPACE archive", ["testapp_item"]),
        ("alter table testapp_item set unlogged", ["testapp_item"]),
        ("ALTER TABLE testapp_item SET LOGGED", ["testapp_item"]),
    ],
)
def test_flags_statements_that_rewrite_tables(sql, tables):
    findings = [f for f in run(sql) if f.code == "SM109"]
    assert [f.table for f in findings] == tables
    for finding in findings:
        assert finding.lock.value == "ACCESS EXCLUSIVE"
        assert finding.rewrites_table is True
        assert "reads and writes wait" in finding.message


def test_message_and_hint():
    finding = flags("SM109", run("VACUUM FULL testapp_item"))
    assert finding.message.startswith("VACUUM FULL testapp_item rewrites the table")
    assert "pg_repack" in finding.hint
    finding = flags("SM109", run("VACUUM FULL"))
    assert "every table of the database" in finding.message


@pytest.mark.parametrize(
    "sql",
    [
        "VACUUM testapp_item",
        "VACUUM (FULL false) testapp_item",
        "VACUUM (FULL off, ANALYZE) testapp_item",
        "ANALYZE testapp_item",
        "VACUUM ANALYZE testapp_item",
        "ALTER TABLE testapp_item CLUSTER ON testapp_item_pkey",
        "ALTER TABLE testapp_item SET (fillfactor = 70)",
    ],
)
def test_leaves_statements_that_do_not_rewrite_alone(sql):
    leaves_alone("SM109", run(sql))


def test_a_table_created_in_the_same_migration_does_not_block():
    findings = judge([ITEM, migrations.RunSQL("CLUSTER testapp_item USING testapp_item_pkey")])
    assert not flags("SM109", findings).blocking


def _relfilenode(cursor) -> int:
    cursor.execute("SELECT relfilenode FROM pg_class WHERE relname = 'scratch'")
    return int(cursor.fetchone()[0])


@pytest.mark.parametrize(
    ("create", "statement"),
    [
        ("CREATE TABLE scratch (n int PRIMARY KEY)", "CLUSTER scratch USING scratch_pkey"),
        ("CREATE TABLE scratch (n int)", "ALTER TABLE scratch SET UNLOGGED"),
        ("CREATE UNLOGGED TABLE scratch (n int)", "ALTER TABLE scratch SET LOGGED"),
    ],
)
def test_postgresql_rewrites_the_table(create, statement):
    with connection.cursor() as cursor:
        cursor.execute(create)
        cursor.execute("INSERT INTO scratch SELECT g FROM generate_series(1, 3) g")
        before = _relfilenode(cursor)
        cursor.execute(statement)
        assert _relfilenode(cursor) != before


def test_postgresql_rewrites_the_table_in_vacuum_full():
    # VACUUM cannot run in the test's transaction: use a connection in autocommit.
    autocommit = connections.create_connection("default")
    try:
        with autocommit.cursor() as cursor:
            cursor.execute("CREATE TABLE scratch (n int)")
            try:
                before = _relfilenode(cursor)
                cursor.execute("VACUUM scratch")
                assert _relfilenode(cursor) == before
                cursor.execute("VACUUM FULL scratch")
                assert _relfilenode(cursor) != before
            finally:
                cursor.execute("DROP TABLE scratch")
    finally:
        autocommit.close()
