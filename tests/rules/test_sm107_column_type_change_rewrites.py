from __future__ import annotations

from typing import Any

import pytest
from django.db import connection, migrations, models

from tests.rules.judge import ZERO_DOWNTIME, flags, judge, leaves_alone

# The zero-downtime backend warns about the operations it cannot make safe; the
# rules judge the SQL it emits regardless.
pytestmark = pytest.mark.filterwarnings(
    "ignore::django_zero_downtime_migrations.backends.postgres.schema.UnsafeOperationWarning"
)


class SqlTypeField(models.Field):  # type: ignore[type-arg]
    """A field of any SQL type, so the project state knows the column's type before a change."""

    def __init__(self, sql_type: str, *args: Any, **kwargs: Any) -> None:
        self.sql_type = sql_type
        super().__init__(*args, **kwargs)

    def db_type(self, connection: Any) -> str:
        return self.sql_type

    def deconstruct(self) -> Any:
        name, path, args, kwargs = super().deconstruct()
        return name, path, [self.sql_type, *args], kwargs


def item(sql_type: str, *, indexed: bool = True) -> migrations.CreateModel:
    return migrations.CreateModel(
        "Item",
        [
            ("id", models.BigAutoField(primary_key=True)),
            ("c", SqlTypeField(sql_type, null=True, db_index=indexed)),
        ],
    )


def alter(new_type: str, using: str = "") -> migrations.RunSQL:
    return migrations.RunSQL(f"ALTER TABLE testapp_item ALTER COLUMN c TYPE {new_type}{using}")


KEEPS, INDEXES, REWRITES = "keeps the table", "rebuilds the indexes", "rewrites the table"

#: (old type, new type, what PostgreSQL 15 does), with the session time zone UTC.
#: Every line is checked twice below: against the rule, and on the test database.
CASES = [
    ("varchar(20)", "varchar(20)", KEEPS),
    ("varchar(20)", "varchar(40)", KEEPS),
    ("varchar(20)", "varchar", KEEPS),
    ("varchar(20)", "text", KEEPS),
    ("text", "varchar", KEEPS),
    ("varchar(20)", "varchar(10)", REWRITES),
    ("text", "varchar(20)", REWRITES),
    ("varchar", "varchar(20)", REWRITES),
    ("varchar(20)", "char(20)", REWRITES),
    ("char(10)", "char(20)", REWRITES),
    ("char(10)", "text", REWRITES),
    ("numeric(10,2)", "numeric(12,2)", KEEPS),
    ("numeric(10,2)", "numeric", KEEPS),
    ("numeric(10)", "numeric(10,0)", KEEPS),
    ("numeric(10,2)", "numeric(12,3)", REWRITES),
    ("numeric(10,2)", "numeric(8,2)", REWRITES),
    ("numeric", "numeric(10,2)", REWRITES),
    ("bit varying(5)", "bit varying(10)", KEEPS),
    ("bit varying(10)", "bit varying", KEEPS),
    ("bit(5)", "bit(10)", REWRITES),
    ("timestamp(3)", "timestamp(6)", KEEPS),
    ("timestamp(3)", "timestamp", KEEPS),
    ("timestamp", "timestamp(6)", KEEPS),
    ("timestamp", "timestamp(3)", REWRITES),
    ("timestamptz(3)", "timestamptz", KEEPS),
    ("time(3)", "time(6)", KEEPS),
    ("timetz(3)", "timetz(6)", KEEPS),
    ("interval(3)", "interval", KEEPS),
    ("interval", "interval(6)", KEEPS),
    ("interval", "interval(3)", REWRITES),
    ("timestamp", "timestamptz", INDEXES),
    ("timestamptz", "timestamp", INDEXES),
    ("timestamptz(3)", "timestamp(6)", INDEXES),
    ("cidr", "inet", KEEPS),
    ("inet", "cidr", REWRITES),
    ("integer", "bigint", REWRITES),
    ("bigint", "integer", REWRITES),
    ("smallint", "integer", REWRITES),
    ("integer", "numeric", REWRITES),
    ("integer", "text", REWRITES),
    ("real", "double precision", REWRITES),
    ("date", "timestamp", REWRITES),
    ("uuid", "text", REWRITES),
    ("varchar(20)[]", "varchar(40)[]", REWRITES),
    ("varchar[]", "text[]", REWRITES),
    ("text", 'text COLLATE "C"', INDEXES),
]


@pytest.mark.parametrize(("old", "new", "effect"), CASES)
def test_postgresql_rewrites_exactly_these(old, new, effect):
    """``pg_class.relfilenode`` changes when a table or index is written anew."""
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL TimeZone = 'UTC'")
        cursor.execute(f"CREATE TABLE scratch (c {old})")
        cursor.execute("CREATE INDEX scratch_c ON scratch (c)")
        cursor.execute("INSERT INTO scratch SELECT NULL FROM generate_series(1, 3)")
        files = "SELECT relname, relfilenode FROM pg_class WHERE relname LIKE 'scratch%' ORDER BY 1"
        cursor.execute(files)
        before = dict(cursor.fetchall())
        cursor.execute(f"ALTER TABLE scratch ALTER COLUMN c TYPE {new}")
        cursor.execute(files)
        after = dict(cursor.fetchall())
    table_rewritten = after["scratch"] != before["scratch"]
    index_rebuilt = after["scratch_c"] != before["scratch_c"]
    assert (table_rewritten, index_rebuilt) == {
        KEEPS: (False, False),
        INDEXES: (False, True),
        REWRITES: (True, True),
    }[effect]


@pytest.mark.parametrize(("old", "new", "effect"), CASES)
def test_rule_agrees_with_postgresql(old, new, effect):
    findings = judge([alter(new)], setup=[item(old)])
    if effect == KEEPS:
        leaves_alone("SM107", findings)
        return
    finding = flags("SM107", findings)
    assert finding.table == "testapp_item"
    assert finding.lock.value == "ACCESS EXCLUSIVE"
    assert finding.rewrites_table is (effect == REWRITES)


@pytest.mark.parametrize(
    ("old", "new"), [(old, new) for old, new, effect in CASES if effect == INDEXES]
)
def test_index_rebuild_only_matters_when_the_column_is_indexed(old, new):
    leaves_alone("SM107", judge([alter(new)], setup=[item(old, indexed=False)]))


def test_timestamp_to_timestamptz_rewrites_unless_the_session_is_on_utc(monkeypatch):
    setup = [item("timestamp", indexed=False)]
    assert flags("SM107", judge([alter("timestamptz")], setup=setup, pg_version=11))
    monkeypatch.setitem(connection.__dict__, "timezone_name", "Europe/Berlin")
    assert flags("SM107", judge([alter("timestamptz")], setup=setup)).rewrites_table


def test_postgresql_rewrites_timestamp_to_timestamptz_outside_utc():
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL TimeZone = 'Europe/Berlin'")
        cursor.execute("CREATE TABLE scratch (c timestamp)")
        cursor.execute("SELECT relfilenode FROM pg_class WHERE relname = 'scratch'")
        before = cursor.fetchone()
        cursor.execute("ALTER TABLE scratch ALTER COLUMN c TYPE timestamptz")
        cursor.execute("SELECT relfilenode FROM pg_class WHERE relname = 'scratch'")
        assert cursor.fetchone() != before


@pytest.mark.parametrize(
    ("using", "effect"),
    [
        (" USING c", KEEPS),
        (" USING c::varchar(40)", KEEPS),
        (" USING (c)::pg_catalog.varchar(40)", KEEPS),
        (" USING c || ''", REWRITES),
        (" USING lower(c)", REWRITES),
    ],
)
def test_using_expression(using, effect):
    findings = judge([alter("varchar(40)", using)], setup=[item("varchar(20)")])
    if effect == KEEPS:
        leaves_alone("SM107", findings)
    else:
        assert "USING expression" in flags("SM107", findings).message


def test_postgresql_rewrites_for_a_using_expression():
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE scratch (c varchar(20))")
        cursor.execute("SELECT relfilenode FROM pg_class WHERE relname = 'scratch'")
        before = cursor.fetchone()
        cursor.execute("ALTER TABLE scratch ALTER COLUMN c TYPE varchar(40) USING c || ''")
        cursor.execute("SELECT relfilenode FROM pg_class WHERE relname = 'scratch'")
        assert cursor.fetchone() != before


ITEM = migrations.CreateModel(
    "Item",
    [
        ("id", models.AutoField(primary_key=True)),
        ("name", models.CharField(max_length=20)),
        ("price", models.DecimalField(max_digits=10, decimal_places=2)),
        ("qty", models.IntegerField()),
    ],
)


@pytest.mark.parametrize("engine", [None, ZERO_DOWNTIME])
@pytest.mark.parametrize(
    ("field", "new", "effect"),
    [
        ("name", models.CharField(max_length=40), KEEPS),
        ("name", models.TextField(), KEEPS),
        ("price", models.DecimalField(max_digits=14, decimal_places=2), KEEPS),
        ("price", models.DecimalField(max_digits=14, decimal_places=4), REWRITES),
        ("qty", models.BigIntegerField(), REWRITES),
        ("id", models.BigAutoField(primary_key=True), REWRITES),
        ("name", models.CharField(max_length=10), REWRITES),
    ],
)
def test_alter_field(engine, field, new, effect):
    findings = judge([migrations.AlterField("item", field, new)], setup=[ITEM], engine=engine)
    if effect == KEEPS:
        leaves_alone("SM107", findings)
    else:
        finding = flags("SM107", findings)
        assert finding.rewrites_table
        assert f"ALTER COLUMN {field} TYPE" in finding.message


def test_message_names_both_types_and_the_hint_the_way_out():
    op = migrations.AlterField("item", "qty", models.BigIntegerField())
    finding = flags("SM107", judge([op], setup=[ITEM]))
    assert "TYPE bigint rewrites testapp_item (was integer)" in finding.message
    assert '"qty_new"' in finding.hint
    assert "atomic = False" in finding.hint


def test_collation_change_of_an_indexed_field():
    old = models.CharField(max_length=20, db_index=True, db_collation="C")
    setup = [
        migrations.CreateModel("Tag", [("id", models.AutoField(primary_key=True)), ("s", old)])
    ]
    op = migrations.AlterField("tag", "s", models.CharField(max_length=20, db_index=True))
    finding = flags("SM107", judge([op], setup=setup))
    assert finding.rewrites_table is False
    assert "collation changes from C to the default" in finding.message


@pytest.mark.parametrize(
    "sql",
    [
        "alter table testapp_item alter column qty type bigint",
        'ALTER TABLE "testapp_item"\n  ALTER "qty" SET DATA TYPE int8',
        "ALTER TABLE testapp_item ALTER COLUMN name TYPE text, ALTER COLUMN qty TYPE bigint",
    ],
)
def test_flags_handwritten_sql(sql):
    finding = flags("SM107", judge([migrations.RunSQL(sql)], setup=[ITEM]))
    assert "(was integer)" in finding.message


def test_modifiers_that_are_not_numbers_count():
    # PostGIS-style modifiers: geometry(Point, 4326) to geometry(Polygon, 4326) is a change.
    sql = migrations.RunSQL("ALTER TABLE testapp_item ALTER COLUMN c TYPE shape(Polygon, 4326)")
    flags("SM107", judge([sql], setup=[item("shape(Point, 4326)")]))
    sql = migrations.RunSQL("ALTER TABLE testapp_item ALTER COLUMN c TYPE shape(Point, 4326)")
    leaves_alone("SM107", judge([sql], setup=[item("shape(Point, 4326)")]))


def test_unknown_table_is_assumed_to_rewrite():
    sql = migrations.RunSQL("ALTER TABLE legacy ALTER COLUMN c TYPE varchar(40)")
    finding = flags("SM107", judge([sql]))
    assert "cannot be told" in finding.message


def test_leaves_a_table_created_in_the_same_migration_alone():
    op = migrations.AlterField("item", "qty", models.BigIntegerField())
    leaves_alone("SM107", judge([ITEM, op]))
