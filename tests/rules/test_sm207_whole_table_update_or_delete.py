from __future__ import annotations

import json
import re

import pytest
from django.db import connection, migrations, models
from django.db.migrations.state import ProjectState
from django.db.models import BooleanField, F, Q
from django.db.models.expressions import RawSQL

from django_safemigrate import Backfill
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
        ("sku", models.CharField(max_length=20, unique=True)),
        ("shop", models.IntegerField(default=0)),
        ("code", models.CharField(max_length=20, default="")),
        ("lot", models.IntegerField(default=0)),
        ("slot", models.IntegerField(default=0)),
        ("serial", models.IntegerField(null=True)),
    ],
    options={
        "unique_together": {("shop", "code")},
        "constraints": [
            models.UniqueConstraint(fields=["lot", "slot"], name="item_lot_slot_uniq"),
            # Unique only among the rows it covers: not a key of the table.
            models.UniqueConstraint(
                fields=["serial"], condition=Q(note__isnull=False), name="item_serial_uniq"
            ),
        ],
    },
)
ENGINES = pytest.mark.parametrize("engine", [None, ZERO_DOWNTIME])


def run(sql, **kwargs):
    return judge([migrations.RunSQL(sql)], setup=[ITEM], **kwargs)


# -- without WHERE ----------------------------------------------------------------------------


@ENGINES
def test_flags_update_without_where(engine):
    finding = flags("SM207", run("UPDATE testapp_item SET note = 'x'", engine=engine))
    assert finding.severity.value == "risky"
    assert finding.table == "testapp_item"
    assert finding.lock.value == "ROW EXCLUSIVE"
    assert finding.rewrites_table is True
    assert finding.blocking
    assert finding.message.startswith("UPDATE testapp_item without WHERE")
    assert 'Backfill("item", set={"note": "x"})' in finding.hint


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
    findings = run("UPDATE testapp_item SET note = 'x'; DELETE FROM testapp_item WHERE id = 0;")
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
        migrations.RunSQL("UPDATE testapp_item SET note = 'x' WHERE note IS NULL"),
        migrations.RunSQL("DELETE FROM testapp_item WHERE note IS NULL"),
    ]
    findings = [f for f in judge(ops) if f.code == "SM207"]
    assert len(findings) == 4
    assert not any(f.blocking for f in findings)


# -- a WHERE that does not bound the rows by key ----------------------------------------------


@ENGINES
@pytest.mark.parametrize(
    "sql",
    [
        # A filter on an ordinary column.
        "UPDATE testapp_item SET note = 'x' WHERE note IS NULL",
        "DELETE FROM testapp_item WHERE name < 'm'",
        "UPDATE testapp_item SET note = 'x' WHERE name = 'a'",
        # An open range on the primary key, or one too wide to be a batch.
        "UPDATE testapp_item SET note = 'x' WHERE id > 100",
        "DELETE FROM testapp_item WHERE id < 100",
        "UPDATE testapp_item SET note = 'x' WHERE id BETWEEN 1 AND 1000000",
        "UPDATE testapp_item SET note = 'x' WHERE id >= 1 AND note < 'x'",
        # An OR with an unbounded term; NOT of a bounded one.
        "UPDATE testapp_item SET note = 'x' WHERE id = 5 OR note IS NULL",
        "UPDATE testapp_item SET note = 'x' WHERE NOT (id = 5)",
        "UPDATE testapp_item SET note = 'x' WHERE id NOT IN (1, 2)",
        # Part of a composite key; a conditional unique constraint.
        "UPDATE testapp_item SET note = 'x' WHERE shop = 1",
        "UPDATE testapp_item SET note = 'x' WHERE lot = 1 AND code = 'a'",
        "UPDATE testapp_item SET note = 'x' WHERE serial = 7",
        # A value per row rather than one for the statement.
        "UPDATE testapp_item SET note = 'x' WHERE id = shop",
        "UPDATE testapp_item SET note = 'x' WHERE id = (SELECT max(o.id) FROM other o "
        "WHERE o.name = testapp_item.name)",
        # Subqueries and WITH queries without LIMIT.
        "UPDATE testapp_item SET note = 'x' WHERE id IN (SELECT id FROM testapp_item "
        "WHERE note IS NULL)",
        "UPDATE testapp_item SET note = 'x' WHERE id = ANY(ARRAY(SELECT id FROM testapp_item))",
        "WITH batch AS (SELECT id FROM testapp_item WHERE note IS NULL) "
        "UPDATE testapp_item SET note = 'x' WHERE id IN (SELECT id FROM batch)",
        "UPDATE testapp_item SET note = 'x' WHERE id IN (SELECT id FROM testapp_item "
        "ORDER BY id FETCH FIRST 10 ROWS WITH TIES)",
        # A join on an ordinary table: only the target's own filter counts.
        "UPDATE testapp_item AS i SET note = o.note FROM other o WHERE i.id = o.item_id",
        "DELETE FROM testapp_item AS i USING other o WHERE i.id = o.item_id",
        # A data-modifying WITH query.
        "WITH moved AS (DELETE FROM testapp_item WHERE note IS NULL RETURNING *) "
        "INSERT INTO archive SELECT * FROM moved",
        "WITH b AS (SELECT 1) UPDATE testapp_item SET note = 'x' WHERE true",
    ],
)
def test_flags_a_filter_that_does_not_bound_the_rows_by_key(engine, sql):
    finding = flags("SM207", run(sql, engine=engine))
    assert "does not bound the rows by key" in finding.message
    assert "in one transaction" in finding.message
    assert finding.blocking


def test_says_why_and_points_to_backfill():
    finding = flags("SM207", run("UPDATE testapp_item SET note = 'x' WHERE note IS NULL"))
    assert finding.severity.value == "risky"
    assert finding.table == "testapp_item"
    assert finding.lock.value == "ROW EXCLUSIVE"
    assert finding.message == (
        "The WHERE of UPDATE testapp_item (on note) does not bound the rows by key (no "
        "equality, IN list or short range on id, sku, (code, shop) or (lot, slot)): the "
        "statement locks and rewrites every matching row, up to the whole table, in one "
        "transaction, holding each row lock until the migration commits."
    )
    assert (
        'Backfill("item", set={"note": "x"}, where=Q(note__isnull=True)) '
        "(from django.db.models import Q; from django_safemigrate import Backfill)."
    ) in finding.hint


def test_says_how_many_rows_a_wide_key_range_lets_through():
    finding = flags("SM207", run("UPDATE testapp_item SET note = 'x' WHERE id BETWEEN 1 AND 50000"))
    assert "does not bound the rows by key to a batch" in finding.message
    assert "up to 50,000 rows" in finding.message


def test_a_filtered_delete_is_risky_and_its_hint_deletes_in_batches():
    finding = flags("SM207", run("DELETE FROM testapp_item WHERE note IS NULL"))
    assert finding.severity.value == "risky"
    assert finding.message.startswith("The WHERE of DELETE FROM testapp_item (on note)")
    assert "locks and deletes every matching row" in finding.message
    assert (
        'cursor.execute("DELETE FROM testapp_item WHERE ctid = ANY(ARRAY(SELECT ctid FROM '
        'testapp_item WHERE note IS NULL LIMIT 1000))") again until cursor.rowcount is 0'
    ) in finding.hint


def test_a_filtered_statement_on_a_small_table_does_not_block():
    # Unlike a DELETE without WHERE, it does not empty the table: a short lock.
    for sql in (
        "UPDATE testapp_item SET note = 'x' WHERE note IS NULL",
        "DELETE FROM testapp_item WHERE note IS NULL",
    ):
        assert not flags("SM207", run(sql, tables={"testapp_item": 10})).blocking
        assert flags("SM207", run(sql, tables={"testapp_item": 50_000})).blocking


def test_the_hint_for_a_join_leaves_the_joined_rows_to_the_author():
    sql = "UPDATE testapp_item AS i SET note = o.note FROM other o WHERE i.id = o.item_id"
    hint = flags("SM207", run(sql)).hint
    assert 'Backfill("item", set={"note": ...}, where=...)' in hint
    assert "over the rows it joins (other AS o)" in hint


def test_the_hint_names_the_app_of_another_apps_model():
    finding = flags(
        "SM207",
        judge(
            [migrations.RunSQL("UPDATE shop_item SET note = 'x' WHERE note IS NULL")],
            setup=[ITEM],
            setup_app="shop",
        ),
    )
    assert "(on note)" in finding.message
    assert "Run it as a Backfill in a migration of the shop app" in finding.hint


def test_a_model_with_its_own_table_name_and_a_foreign_key():
    order = migrations.CreateModel(
        "Order",
        [
            ("number", models.IntegerField(primary_key=True)),
            ("item", models.OneToOneField("testapp.Item", models.CASCADE)),
            ("total", models.IntegerField(db_column="amount", null=True)),
        ],
        options={"db_table": "shop_orders"},
    )
    ops = [ITEM, order]
    for sql in (
        "UPDATE shop_orders SET amount = 0 WHERE number = 1",
        "UPDATE shop_orders SET amount = 0 WHERE item_id = 1",
    ):
        leaves_alone("SM207", judge([migrations.RunSQL(sql)], setup=ops))
    sql = "UPDATE shop_orders SET amount = 0 WHERE amount IS NULL"
    finding = flags("SM207", judge([migrations.RunSQL(sql)], setup=ops))
    assert "(no equality, IN list or short range on number or item_id)" in finding.message
    assert 'Backfill("order", set={"total": 0}, where=Q(total__isnull=True))' in finding.hint


# -- a WHERE that bounds the rows by key -------------------------------------------------------


@ENGINES
@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE testapp_item SET note = 'x' WHERE id = 5",
        "UPDATE testapp_item SET note = 'x' WHERE 5 = id AND note IS NULL",
        "UPDATE testapp_item SET note = 'x' WHERE id IN (1, 2, 3)",
        "UPDATE testapp_item SET note = 'x' WHERE id = ANY(ARRAY[1, 2, 3])",
        "UPDATE testapp_item SET note = 'x' WHERE id = ANY('{1,2,3}'::bigint[])",
        "UPDATE testapp_item SET note = 'x' WHERE id BETWEEN 1 AND 1000",
        "UPDATE testapp_item SET note = 'x' WHERE id BETWEEN SYMMETRIC 1000 AND 1",
        "UPDATE testapp_item SET note = 'x' WHERE id >= 1 AND id < 1001 AND note IS NULL",
        "UPDATE testapp_item SET note = 'x' WHERE ctid = '(0,1)'",
        "UPDATE testapp_item SET note = 'x' WHERE ctid = ANY(ARRAY(SELECT ctid FROM "
        "testapp_item WHERE note IS NULL LIMIT 1000))",
        "UPDATE testapp_item SET note = 'x' WHERE sku = 'a'",
        "UPDATE testapp_item SET note = 'x' WHERE sku = 'a' OR id = 2",
        "UPDATE testapp_item SET note = 'x' WHERE (sku = 'a' AND note IS NULL) OR id IN (2, 3)",
        "UPDATE testapp_item SET note = 'x' WHERE shop = 1 AND code = 'a'",
        "UPDATE testapp_item SET note = 'x' WHERE (shop, code) = (1, 'a')",
        "UPDATE testapp_item SET note = 'x' WHERE (shop, code) IN ((1, 'a'), (2, 'b'))",
        "UPDATE testapp_item SET note = 'x' WHERE lot = 1 AND slot IN (1, 2) AND name > 'a'",
        "UPDATE testapp_item SET note = 'x' WHERE id = (SELECT max(id) FROM testapp_item)",
        "DELETE FROM testapp_item WHERE id IN (SELECT id FROM testapp_item LIMIT 1000)",
        "DELETE FROM testapp_item WHERE id IN (SELECT id FROM testapp_item WHERE note IS NULL "
        "ORDER BY id LIMIT 1000)",
        "WITH batch AS (SELECT id FROM testapp_item WHERE note IS NULL LIMIT 1000) "
        "UPDATE testapp_item SET note = 'x' WHERE id IN (SELECT id FROM batch)",
        "WITH batch AS (SELECT id FROM testapp_item LIMIT 500) UPDATE testapp_item AS i "
        "SET note = 'x' FROM batch WHERE i.id = batch.id",
        "UPDATE testapp_item AS i SET note = v.note FROM (VALUES (1, 'a'), (2, 'b')) "
        "AS v(id, note) WHERE i.id = v.id",
        "UPDATE testapp_item AS i SET note = o.note FROM other o WHERE i.id = o.item_id "
        "AND i.id IN (1, 2)",
        "DELETE FROM testapp_item WHERE id IN (VALUES (1), (2))",
        "WITH gone AS (DELETE FROM testapp_item WHERE id BETWEEN 1 AND 10 RETURNING id) "
        "SELECT 1 FROM gone",
        "UPDATE testapp_item SET note = 'x' WHERE false",
        "INSERT INTO testapp_item (name) VALUES ('x')",
        "SELECT count(*) FROM testapp_item",
    ],
)
def test_leaves_statements_bounded_by_key_alone(engine, sql):
    leaves_alone("SM207", run(sql, engine=engine))


def test_leaves_a_list_of_keys_passed_as_a_parameter_alone():
    op = migrations.RunSQL([("UPDATE testapp_item SET note = 'x' WHERE id = ANY(%s)", [[1, 2]])])
    leaves_alone("SM207", judge([op], setup=[ITEM]))


def test_a_list_of_keys_longer_than_a_batch_is_not_bounded():
    keys = ", ".join(str(n) for n in range(10_001))
    flags("SM207", run(f"UPDATE testapp_item SET note = 'x' WHERE id IN ({keys})"))


def test_a_list_of_composite_keys_counts_its_rows_not_their_combinations():
    # 6,000 (shop, code) pairs are 6,000 rows, not 6,000 shops times 6,000 codes.
    pairs = ", ".join(f"({n}, 'c{n}')" for n in range(6_000))
    sql = f"UPDATE testapp_item SET note = 'x' WHERE (shop, code) IN ({pairs})"
    leaves_alone("SM207", run(sql))
    sql = (
        "UPDATE testapp_item SET note = 'x' WHERE (shop, code) IN "
        "(SELECT shop, code FROM other LIMIT 5000)"
    )
    leaves_alone("SM207", run(sql))
    # Two separate lists, on the other hand, allow every combination.
    shops = ", ".join(str(n) for n in range(200))
    codes = ", ".join(f"'c{n}'" for n in range(200))
    sql = f"UPDATE testapp_item SET note = 'x' WHERE shop IN ({shops}) AND code IN ({codes})"
    assert "up to 40,000 rows" in flags("SM207", run(sql)).message


@pytest.mark.parametrize("engine", [None, ZERO_DOWNTIME])
def test_flags_djangos_own_backfill_like_sql_written_by_hand(engine):
    # Making a column NOT NULL with a default: Django UPDATEs every NULL row in one
    # statement, which is the fact this rule judges, whoever wrote the SQL.
    op = migrations.AlterField("item", "note", models.CharField(max_length=20, default="-"))
    finding = flags("SM207", judge([op], setup=[ITEM], engine=engine))
    assert finding.table == "testapp_item"


# -- tables no model describes -----------------------------------------------------------------


def test_a_table_of_no_model_has_no_known_key_offline():
    finding = flags("SM207", run("UPDATE log SET n = 1 WHERE id = 5"))
    assert (
        "log is the table of no model in the project state and no live database was asked "
        "for its keys, so only ctid is a known key"
    ) in finding.message
    assert "acknowledge it" in finding.hint
    assert "A Backfill needs a model" in finding.hint
    leaves_alone("SM207", run("UPDATE log SET n = 1 WHERE ctid = '(0,1)'"))


def test_purging_old_rows_of_a_table_of_no_model():
    sql = "DELETE FROM log WHERE created < now() - interval '30 days'"
    finding = flags("SM207", run(sql))
    assert finding.message.startswith("The WHERE of DELETE FROM log (on created)")
    assert (
        "DELETE FROM log WHERE ctid = ANY(ARRAY(SELECT ctid FROM log WHERE created < now() - "
        "CAST('30 days' AS interval) LIMIT 1000))"
    ) in finding.hint


LOG = (
    "CREATE TABLE log (id bigint PRIMARY KEY, code text, slug text, name text, n integer, "
    "created timestamptz)",
    "CREATE UNIQUE INDEX log_code ON log (code) INCLUDE (n)",
    "CREATE UNIQUE INDEX log_slug ON log (slug) WHERE slug IS NOT NULL",
    "CREATE UNIQUE INDEX log_name ON log (lower(name))",
)


@pytest.fixture
def live_log():
    with connection.cursor() as cursor:
        for statement in LOG:
            cursor.execute(statement)
    return {"log": 50_000}


@pytest.mark.parametrize(
    "where",
    ["id = 5", "code = 'a'", "code IN ('a', 'b') AND n IS NULL", "id BETWEEN 1 AND 100"],
)
def test_reads_the_keys_of_a_table_of_no_model_on_the_live_database(live_log, where):
    leaves_alone("SM207", run(f"UPDATE log SET n = 1 WHERE {where}", tables=live_log))


@pytest.mark.parametrize(
    "where",
    [
        "n = 1",  # an INCLUDE column of a unique index
        "slug = 'a'",  # a partial unique index
        "name = 'a'",  # a unique index on an expression
        "created < now() - interval '30 days'",
    ],
)
def test_only_total_unique_indexes_on_columns_are_keys(live_log, where):
    finding = flags("SM207", run(f"UPDATE log SET n = 1 WHERE {where}", tables=live_log))
    assert "(no equality, IN list or short range on id or code)" in finding.message
    # The live primary key walks the batches.
    assert "AND id > %s AND id <= %s" in finding.hint
    assert "acknowledge" not in finding.hint


def test_a_live_table_without_any_unique_index(live_log):
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE bare (n integer)")
    finding = flags("SM207", run("UPDATE bare SET n = 1 WHERE n = 2", tables={"bare": 50_000}))
    assert "bare has no primary key or unique index, so only ctid is a key" in finding.message


# -- the hints do what the statement does ------------------------------------------------------


def _table_rows():
    with connection.cursor() as cursor:
        cursor.execute("SELECT id, name, note, shop FROM testapp_item ORDER BY id")
        return cursor.fetchall()


@pytest.fixture
def items():
    """The Item table with rows, in the test's transaction; the state it belongs to."""
    state = ProjectState()
    ITEM.state_forwards("testapp", state)
    with connection.schema_editor() as editor:
        editor.create_model(state.apps.get_model("testapp", "Item"))
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO testapp_item (name, note, sku, shop, code, lot, slot) "
            "SELECT 'n' || g, CASE WHEN g % 3 = 0 THEN NULL ELSE 'a' || g END, 's' || g, "
            "g % 5, 'c' || g, g, g FROM generate_series(1, 2500) AS g"
        )
    return state


def _backfill_from(hint):
    start = hint.index("Backfill(")
    end = hint.index(" (from ", start)
    names = {"Backfill": Backfill, "Q": Q, "F": F, "RawSQL": RawSQL, "BooleanField": BooleanField}
    operation = eval(hint[start:end], names)  # the hint's own Python
    assert isinstance(operation, Backfill)
    return operation


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE testapp_item SET note = 'x' WHERE note IS NULL",
        "UPDATE testapp_item SET note = upper(name) || '%', shop = shop + 10 "
        "WHERE note LIKE 'a1%' OR shop BETWEEN 2 AND 3",
        "UPDATE testapp_item AS i SET note = i.name WHERE i.note <> 'a7' AND i.shop >= 1 "
        "AND i.name IN ('n1', 'n2', 'n4', 'n5')",
        "UPDATE testapp_item SET shop = 0",
    ],
)
def test_the_backfill_in_the_hint_does_what_the_update_does(items, sql):
    backfill = _backfill_from(flags("SM207", run(sql)).hint)
    with connection.cursor() as cursor:
        cursor.execute("SAVEPOINT statement")
        cursor.execute(sql)
        expected = _table_rows()
        cursor.execute("ROLLBACK TO SAVEPOINT statement")
    assert expected != _table_rows()
    with connection.schema_editor(atomic=False) as editor:
        backfill.database_forwards("testapp", editor, items, items)
    assert _table_rows() == expected


@pytest.mark.parametrize(
    ("sql", "rounds"),
    [
        # 500 rows: one batch, and one that finds none left.
        (
            "DELETE FROM testapp_item AS i USING testapp_item AS o "
            "WHERE o.id = i.id + 1 AND i.shop = 1",
            2,
        ),
        # 2,000 rows, picked by a WITH query the batches carry along.
        (
            "WITH old AS (SELECT id FROM testapp_item WHERE shop <> 0) "
            "DELETE FROM testapp_item WHERE id IN (SELECT id FROM old)",
            3,
        ),
    ],
)
def test_the_batches_in_the_hint_delete_what_the_delete_does(items, sql, rounds):
    hint = flags("SM207", run(sql)).hint
    batch = json.loads(re.search(r'cursor\.execute\((".*")\) again', hint).group(1))
    with connection.cursor() as cursor:
        cursor.execute("SAVEPOINT statement")
        cursor.execute(sql)
        expected = _table_rows()
        cursor.execute("ROLLBACK TO SAVEPOINT statement")
        ran = 0
        while True:
            cursor.execute(batch)
            ran += 1
            if cursor.rowcount == 0:
                break
    assert ran == rounds
    assert _table_rows() == expected
