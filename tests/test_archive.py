"""``SAFEMIGRATE['ARCHIVE']``: what a destructive step drops is kept, and ``restorearchive``
puts it back. Real commands against a real PostgreSQL; results read from the catalogs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import command_env, copy_scenario, fresh_database, query, run_command

#: Nothing here depends on the Django version: run once, in CI's first pass.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.once]

APP = "bk_shop"
SCHEMA = "safemigrate_archive"


@pytest.fixture
def database() -> Iterator[str]:
    with fresh_database("sm_arch") as name:
        yield name


@pytest.fixture
def project(tmp_path: Path) -> Path:
    copy_scenario(APP, tmp_path)
    return tmp_path


def _env(database: str, project: Path, **settings: Any) -> dict[str, str]:
    return command_env(
        database,
        apps=[APP],
        pythonpath=[project],
        settings={"REVIEW": "never", "ARCHIVE": True, **settings},
    )


def _deployed(database: str, project: Path) -> None:
    run_command(["safemigrate", APP, "0001", "-v", "0"], _env(database, project), expect=0)
    query(
        database,
        "INSERT INTO bk_shop_item (id, name, legacy) VALUES (1, 'a', 'x'), (2, 'b', NULL), "
        "(3, 'c', 'z')",
    )
    query(database, "INSERT INTO bk_shop_tag (id, label) VALUES (10, 'red'), (11, 'blue')")


def _archives(database: str) -> list[tuple[Any, ...]]:
    return query(
        database,
        "SELECT a.id, a.name, a.operation, a.source_table, a.source_column, a.primary_key, "
        "a.archive_schema, a.archive_table, a.row_count, a.run_id "
        f"FROM django_safemigrate_archive a WHERE a.app_label = '{APP}' ORDER BY a.id",
    )


def _columns(database: str, table: str) -> list[str]:
    return [
        name
        for (name,) in query(
            database,
            "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(%s) AND attnum > 0 "
            "AND NOT attisdropped ORDER BY attnum",
            [table],
        )
    ]


def test_a_dropped_column_and_a_dropped_table_are_archived_in_the_step(database, project):
    _deployed(database, project)
    run_command(["safemigrate"], _env(database, project), expect=0)
    (column, table) = _archives(database)
    run = column[-1]
    assert column[1:-1] == (
        "0003_remove_item_legacy",
        "RemoveField",
        "bk_shop_item",
        "legacy",
        "id",
        SCHEMA,
        f"bk_shop_item__legacy__{run}",
        3,
    )
    assert table[1:-1] == (
        "0004_delete_tag",
        "DeleteModel",
        "bk_shop_tag",
        "",
        "id",
        SCHEMA,
        f"bk_shop_tag__{run}",
        2,
    )
    # The column is gone from the table and kept, with the primary key, in the archive.
    assert "legacy" not in _columns(database, "bk_shop_item")
    assert query(database, f"SELECT * FROM {SCHEMA}.bk_shop_item__legacy__{run} ORDER BY id") == [
        (1, "x"),
        (2, None),
        (3, "z"),
    ]
    assert query(database, "SELECT to_regclass('bk_shop_tag')") == [(None,)]
    assert query(database, f"SELECT * FROM {SCHEMA}.bk_shop_tag__{run} ORDER BY id") == [
        (10, "red"),
        (11, "blue"),
    ]
    # Append-only, like the rest of the ledger.
    with pytest.raises(Exception, match="append-only"):
        query(database, "DELETE FROM django_safemigrate_archive")


def test_archive_off_keeps_nothing(database, project):
    _deployed(database, project)
    run_command(["safemigrate"], _env(database, project, ARCHIVE=False), expect=0)
    assert _archives(database) == []
    assert query(database, f"SELECT to_regnamespace('{SCHEMA}')") == [(None,)]


def test_a_failed_step_keeps_no_archive(database, project):
    """The copy is in the step's transaction: a drop that fails takes it back."""
    _deployed(database, project)
    # An event trigger makes every drop fail, after the copy ran in the same transaction.
    query(
        database,
        "CREATE FUNCTION refuse_drop() RETURNS event_trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'no drops today'; END $$",
    )
    query(database, "CREATE EVENT TRIGGER refuse ON sql_drop EXECUTE FUNCTION refuse_drop()")
    try:
        result = run_command(["safemigrate"], _env(database, project), expect=1)
    finally:
        query(database, "DROP EVENT TRIGGER refuse")
    assert "no drops today" in result.err
    assert _archives(database) == []
    assert query(database, f"SELECT to_regnamespace('{SCHEMA}')") == [(None,)]
    assert "legacy" in _columns(database, "bk_shop_item")


def test_restore_a_column_after_the_rollback_re_adds_it(database, project):
    _deployed(database, project)
    env = _env(database, project)
    run_command(["safemigrate"], env, expect=0)
    column_id = _archives(database)[0][0]
    run_command(["migrate", APP, "0002", "-v", "0"], env, expect=0)
    assert "legacy" in _columns(database, "bk_shop_item")
    assert query(database, "SELECT legacy FROM bk_shop_item ORDER BY id") == [(None,)] * 3

    shown = run_command(["restorearchive", str(column_id), "--dry-run"], env, expect=0)
    assert "UPDATE" in shown.out
    assert "Dry run: nothing was changed." in shown.out
    assert query(database, "SELECT legacy FROM bk_shop_item ORDER BY id") == [(None,)] * 3

    result = run_command(["restorearchive", str(column_id)], env, expect=0)
    assert "3 row(s)" in result.out
    assert query(database, "SELECT id, legacy FROM bk_shop_item ORDER BY id") == [
        (1, "x"),
        (2, None),
        (3, "z"),
    ]


def test_restore_adds_the_column_when_it_is_missing(database, project):
    _deployed(database, project)
    env = _env(database, project)
    run_command(["safemigrate"], env, expect=0)
    column_id = _archives(database)[0][0]
    result = run_command(
        ["restorearchive", str(column_id), "--into", "bk_shop_item.legacy_restored"], env, expect=0
    )
    assert "add the column bk_shop_item.legacy_restored" in result.out
    assert query(
        database,
        "SELECT format_type(atttypid, atttypmod), attnotnull FROM pg_attribute "
        "WHERE attrelid = 'bk_shop_item'::regclass AND attname = 'legacy_restored'",
    ) == [("character varying(20)", False)]
    assert query(database, "SELECT id, legacy_restored FROM bk_shop_item ORDER BY id") == [
        (1, "x"),
        (2, None),
        (3, "z"),
    ]


def test_restore_a_dropped_table_into_the_table_the_rollback_recreates(database, project):
    _deployed(database, project)
    env = _env(database, project)
    run_command(["safemigrate"], env, expect=0)
    table_id = _archives(database)[1][0]
    run_command(["migrate", APP, "0003", "-v", "0"], env, expect=0)
    assert query(database, "SELECT count(*) FROM bk_shop_tag") == [(0,)]
    run_command(["restorearchive", str(table_id)], env, expect=0)
    assert query(database, "SELECT id, label FROM bk_shop_tag ORDER BY id") == [
        (10, "red"),
        (11, "blue"),
    ]
    # The sequence moved past the restored rows: the next row does not collide.
    assert query(database, "INSERT INTO bk_shop_tag (label) VALUES ('new') RETURNING id") == [(12,)]


def test_restore_refuses_what_it_cannot_do(database, project):
    _deployed(database, project)
    env = _env(database, project)
    run_command(["safemigrate"], env, expect=0)
    column_id, table_id = (row[0] for row in _archives(database))

    unknown = run_command(["restorearchive", "9999"], env, expect=2)
    assert "There is no archive 9999" in unknown.err

    missing = run_command(["restorearchive", str(table_id)], env, expect=2)
    assert "The table bk_shop_tag" in missing.err
    assert "does not exist" in missing.err
    assert "Migrate back to before bk_shop.0004_delete_tag" in missing.err

    query(database, "ALTER TABLE bk_shop_item ADD COLUMN legacy integer")
    mismatch = run_command(["restorearchive", str(column_id)], env, expect=2)
    assert "Type mismatch: bk_shop_item.legacy is integer" in mismatch.err
    assert "character varying(20)" in mismatch.err
    assert query(database, "SELECT count(*) FROM bk_shop_item WHERE legacy IS NOT NULL") == [(0,)]


def test_bad_archive_settings_are_system_check_errors(database, project):
    bad = run_command(["check"], _env(database, project, ARCHIVE="yes"), expect=1)
    assert "safemigrate.E032" in bad.err
    schema = run_command(["check"], _env(database, project, ARCHIVE_SCHEMA="public"), expect=1)
    assert "safemigrate.E033" in schema.err


def test_plain_migrate_archives_through_django_s_own_executor(database, project):
    """With online execution off, plain migrate applies each migration as Django does."""
    _deployed(database, project)
    run_command(["migrate", "-v", "0"], _env(database, project, ONLINE=False), expect=0)
    rows = _archives(database)
    assert [(r[2], r[3], r[4], r[8]) for r in rows] == [
        ("RemoveField", "bk_shop_item", "legacy", 3),
        ("DeleteModel", "bk_shop_tag", "", 2),
    ]
    assert query(
        database, "SELECT command FROM django_safemigrate_run WHERE id = %s", [rows[0][-1]]
    ) == [("migrate",)]


def test_the_archive_is_no_drift(database, project):
    # What the archive keeps is no object any migration builds: the drift check, and a
    # deploy that stops on drift, leave the archive schema alone.
    _deployed(database, project)
    run_command(["safemigrate"], _env(database, project), expect=0)
    assert len(_archives(database)) == 2
    env = _env(database, project, DRIFT="stop")
    result = run_command(["checkmigrations", "--drift"], env, expect=0)
    assert result.output.startswith("No drift: 'default' ("), result.output
    run_command(["safemigrate"], env, expect=0)
