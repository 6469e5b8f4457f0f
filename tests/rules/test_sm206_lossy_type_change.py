from __future__ import annotations

import pytest
from django.db import DataError, connection, migrations, models, transaction

from tests.rules.judge import ZERO_DOWNTIME, flags, judge, leaves_alone
from tests.rules.test_sm107_column_type_change_rewrites import alter, item

# The zero-downtime backend warns about the operations it cannot make safe; the
# rules judge the SQL it emits regardless.
pytestmark = pytest.mark.filterwarnings(
    "ignore::django_zero_downtime_migrations.backends.postgres.schema.UnsafeOperationWarning"
)


FAILS, CHANGES, KEEPS = "fails", "changes the value", "keeps the value"

#: (old type, new type, a value of the old type, what converting it does on PostgreSQL 15).
CASES = [
    ("varchar(20)", "varchar(10)", "'abcdefghijkl'", FAILS),
    ("text", "varchar(5)", "'abcdefgh'", FAILS),
    ("varchar(20)", "char(5)", "'abcdefgh'", FAILS),
    ("bigint", "integer", "3000000000", FAILS),
    ("integer", "smallint", "40000", FAILS),
    ("numeric(10,2)", "numeric(10,1)", "1.25", CHANGES),
    ("numeric(10,2)", "numeric(5,2)", "12345.67", FAILS),
    ("numeric", "numeric(5,2)", "1.005", CHANGES),
    ("numeric(10,2)", "integer", "1.5", CHANGES),
    ("double precision", "real", "1.23456789", CHANGES),
    ("double precision", "bigint", "2.5", CHANGES),
    ("numeric", "double precision", "1.23456789012345678", CHANGES),
    ("timestamp(6)", "timestamp(3)", "'2020-01-01 00:00:00.123456'", CHANGES),
    ("timestamptz", "date", "'2020-01-01 10:00:00+00'", CHANGES),
    # Without a USING clause PostgreSQL refuses these; Django writes one.
    ("text", "integer USING c::integer", "'abc'", FAILS),
    ("varchar(20)", "uuid USING c::uuid", "'x'", FAILS),
    # Widening keeps every value.
    ("varchar(10)", "varchar(20)", "'abc'", KEEPS),
    ("varchar(20)", "text", "'abc'", KEEPS),
    ("text", "varchar", "'abc'", KEEPS),
    ("integer", "bigint", "40000", KEEPS),
    ("numeric(10,2)", "numeric(12,2)", "1.25", KEEPS),
    ("numeric(10,2)", "numeric(12,3)", "1.25", KEEPS),
    ("numeric(10,2)", "numeric", "1.25", KEEPS),
    ("real", "double precision", "1.5", KEEPS),
    ("integer", "numeric", "7", KEEPS),
    ("integer", "text", "7", KEEPS),
    ("timestamp(3)", "timestamp(6)", "'2020-01-01 00:00:00.123'", KEEPS),
    ("timestamp", "timestamptz", "'2020-01-01 10:00:00'", KEEPS),
]


@pytest.mark.parametrize(("old", "new", "value", "effect"), CASES)
def test_postgresql_converts_the_value_so(old, new, value, effect):
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL TimeZone = 'UTC'")
        cursor.execute(f"CREATE TABLE scratch (c {old}, original {old})")
        cursor.execute(f"INSERT INTO scratch VALUES ({value}, {value})")
        try:
            with transaction.atomic():
                cursor.execute(f"ALTER TABLE scratch ALTER COLUMN c TYPE {new}")
        except DataError:
            outcome = FAILS
        else:
            # Read the converted value back as the old type: unchanged values compare equal.
            cursor.execute(f"SELECT c::text::{old} = original FROM scratch")
            outcome = KEEPS if cursor.fetchone()[0] else CHANGES
    assert outcome == effect


@pytest.mark.parametrize(("old", "new", "value", "effect"), CASES)
def test_rule_agrees_with_postgresql(old, new, value, effect):
    findings = judge([alter(new)], setup=[item(old)])
    if effect == KEEPS:
        leaves_alone("SM206", findings)
        return
    finding = flags("SM206", findings)
    # Failing loses nothing (the deploy stops); changing the data is destructive.
    assert finding.severity.value == ("risky" if effect == FAILS else "destructive")
    assert finding.table == "testapp_item"
    assert finding.rewrites_table
    expected = "fails" if effect == FAILS else ("round", "keeps only", "drops")
    assert (
        any(word in finding.message for word in expected)
        if effect != FAILS
        else ("fails" in finding.message)
    )


ITEM = migrations.CreateModel(
    "Item",
    [
        ("id", models.BigAutoField(primary_key=True)),
        ("name", models.CharField(max_length=20)),
        ("qty", models.BigIntegerField()),
    ],
)


@pytest.mark.parametrize("engine", [None, ZERO_DOWNTIME])
def test_alter_field_narrowing(engine):
    findings = judge(
        [
            migrations.AlterField("item", "name", models.CharField(max_length=10)),
            migrations.AlterField("item", "qty", models.IntegerField()),
        ],
        setup=[ITEM],
        engine=engine,
    )
    messages = [f.message for f in findings if f.code == "SM206"]
    assert messages == [
        "ALTER COLUMN name TYPE varchar(10) on testapp_item (was varchar(20)) fails on values "
        "longer than 10 characters (an explicit cast in USING truncates them instead).",
        "ALTER COLUMN qty TYPE integer on testapp_item (was bigint) fails on values outside "
        "the range of integer.",
    ]


def test_char_field_to_integer_field():
    op = migrations.AlterField("item", "name", models.IntegerField())
    finding = flags("SM206", judge([op], setup=[ITEM]))
    assert "fails on the first value that is not a valid integer" in finding.message
    assert "CheckConstraint" in finding.hint


def test_leaves_unknown_and_new_tables_alone():
    leaves_alone("SM206", judge([migrations.RunSQL("ALTER TABLE t ALTER c TYPE int")]))
    op = migrations.AlterField("item", "qty", models.IntegerField())
    leaves_alone("SM206", judge([ITEM, op]))
