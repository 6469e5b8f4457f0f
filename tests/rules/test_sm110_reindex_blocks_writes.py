from __future__ import annotations

import pytest
from django.db import OperationalError, connections, migrations, models

from tests.rules.judge import ZERO_DOWNTIME, flags, judge, leaves_alone

INDEX = models.Index(fields=["name"], name="item_name_idx")
ITEM = migrations.CreateModel(
    "Item",
    [("id", models.BigAutoField(primary_key=True)), ("name", models.CharField(max_length=20))],
    options={"indexes": [INDEX]},
)
BOTH = pytest.mark.parametrize("engine", [None, ZERO_DOWNTIME])


def run(sql, **kwargs):
    return judge([migrations.RunSQL(sql)], setup=[ITEM], atomic=False, **kwargs)


@BOTH
@pytest.mark.parametrize(
    ("sql", "table"),
    [
        ("REINDEX INDEX item_name_idx", "testapp_item"),
        ("reindex   index\n public.item_name_idx", "testapp_item"),
        ("REINDEX TABLE testapp_item", "testapp_item"),
        ("REINDEX (VERBOSE) TABLE testapp_item", "testapp_item"),
        ("REINDEX (CONCURRENTLY false) TABLE testapp_item", "testapp_item"),
        ("REINDEX INDEX some_other_idx", None),
        ("REINDEX SCHEMA public", None),
        ("REINDEX DATABASE app", None),
    ],
)
def test_flags_reindex_without_concurrently(engine, sql, table):
    finding = flags("SM110", run(sql, engine=engine))
    assert finding.table == table
    assert finding.lock.value == "ACCESS EXCLUSIVE"
    assert finding.rewrites_table is False
    assert "writes wait, and so do reads" in finding.message
    assert "CONCURRENTLY" in finding.hint


def test_hint_is_the_concurrent_statement():
    finding = flags("SM110", run("REINDEX INDEX item_name_idx"))
    assert "RunSQL('REINDEX INDEX CONCURRENTLY \"item_name_idx\"')" in finding.hint
    assert "atomic = False" in finding.hint


@BOTH
@pytest.mark.parametrize(
    "sql",
    [
        "REINDEX INDEX CONCURRENTLY item_name_idx",
        "reindex table concurrently testapp_item",
        "REINDEX (CONCURRENTLY) TABLE testapp_item",
        "REINDEX (CONCURRENTLY true, VERBOSE) INDEX item_name_idx",
    ],
)
def test_leaves_concurrent_reindex_alone(engine, sql):
    leaves_alone("SM110", run(sql, engine=engine))


def test_hint_for_whole_database_and_system_catalogs():
    assert "RunSQL('REINDEX DATABASE CONCURRENTLY')" in flags("SM110", run("REINDEX DATABASE")).hint
    assert "maintenance window" in flags("SM110", run("REINDEX SYSTEM")).hint


def test_before_postgresql_12_there_is_no_concurrent_reindex():
    finding = flags("SM110", run("REINDEX INDEX item_name_idx", pg_version=11))
    assert finding.hint.startswith("Before PostgreSQL 12 there is no online REINDEX")
    finding = flags("SM110", run("REINDEX INDEX CONCURRENTLY item_name_idx", pg_version=11))
    assert "does not exist before PostgreSQL 12" in finding.message
    assert finding.lock is None


def test_zero_downtime_backend_does_not_reindex_when_rendering():
    # It adds "REINDEX INDEX CONCURRENTLY" only in its idempotent mode, never for sqlmigrate.
    other = models.Index(fields=["id", "name"], name="item_id_name_idx")
    findings = judge([migrations.AddIndex("item", other)], setup=[ITEM], engine=ZERO_DOWNTIME)
    leaves_alone("SM110", findings)


def test_a_table_created_in_the_same_migration_does_not_block():
    findings = judge([ITEM, migrations.RunSQL("REINDEX TABLE testapp_item")])
    assert not flags("SM110", findings).blocking


def test_postgresql_blocks_reads_that_do_not_use_the_index():
    """A second session's SELECT waits behind REINDEX INDEX, though it cannot use the index."""
    first = connections.create_connection("default")
    second = connections.create_connection("default")
    try:
        with first.cursor() as setup:
            setup.execute("CREATE TABLE scratch_reindex (n int, m int)")
            setup.execute("CREATE INDEX scratch_reindex_n ON scratch_reindex (n)")
        try:
            first.set_autocommit(False)
            with first.cursor() as reindex, second.cursor() as reader:
                reindex.execute("REINDEX INDEX scratch_reindex_n")
                reader.execute("SET lock_timeout = '200ms'")
                with pytest.raises(OperationalError, match="lock timeout"):
                    reader.execute("SELECT * FROM scratch_reindex WHERE m = 1")
            first.rollback()
        finally:
            first.set_autocommit(True)
            with first.cursor() as cleanup:
                cleanup.execute("DROP TABLE scratch_reindex")
    finally:
        first.close()
        second.close()
