from __future__ import annotations

import re

import pytest
from django.db import DatabaseError, DataError, connection, migrations, models, transaction
from django.db.migrations.state import ProjectState

from tests.rules.judge import APP, ZERO_DOWNTIME, flags, judge, leaves_alone
from tests.rules.test_sm107_column_type_change_rewrites import alter, item

# The zero-downtime backend warns about the operations it cannot make safe; the
# rules judge the SQL it emits regardless.
pytestmark = pytest.mark.filterwarnings(
    "ignore::django_zero_downtime_migrations.backends.postgres.schema.UnsafeOperationWarning"
)


FAILS, CHANGES, KEEPS = "fails", "changes the value", "keeps the value"
#: The severity of a statement, from the worst thing it does to a value.
SEVERITY = {FAILS: "risky", CHANGES: "destructive", KEEPS: None}
WORST = [CHANGES, FAILS, KEEPS]


def both(old: str, new: str, value: str, plain: str, cast: str) -> list[tuple[str, str, str, str]]:
    """``ALTER … TYPE new`` (an assignment cast), and with Django's ``USING c::new``."""
    return [(old, new, value, plain), (old, f"{new} USING c::{new}", value, cast)]


def widest(
    old: str, value: str, width: int, new: str = "varchar"
) -> list[tuple[str, str, str, str]]:
    """A type whose widest text is ``value``, ``width`` characters: one less fails or truncates."""
    assert len(value.strip("'")) == width
    return [
        *both(old, f"{new}({width - 1})", value, FAILS, CHANGES),
        *both(old, f"{new}({width})", value, KEEPS, KEEPS),
    ]


#: (old type, ``TYPE …`` clause, a value of the old type, what PostgreSQL 15 does to it),
#: with the session time zone UTC. A statement's verdict is the worst over its values.
CASES = [
    # To varchar(n) / char(n): an explicit cast truncates, an assignment cast fails.
    *widest("smallint", "-32768", 6),
    *widest("integer", "-2147483648", 11),
    *widest("integer", "-2147483648", 11, new="char"),
    *widest("bigint", "-9223372036854775808", 20),
    *widest("numeric(5,2)", "-999.99", 7),
    *widest("numeric(5,2)", "-999.99", 7, new="char"),
    *widest("numeric(3,3)", "-0.999", 6),
    *widest("numeric(2,4)", "-0.0099", 7),
    *widest("numeric(2,-3)", "-99000", 6),
    *widest("real", "'-1.36770935e-33'", 15),
    *widest("double precision", "'-2.2250738585072014e-308'", 24),
    *widest("boolean", "false", 5),
    *widest("uuid", "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'", 36),
    *widest("date", "'4714-11-24 BC'", 13),
    *both("date", "varchar(10)", "'10000-01-01'", FAILS, CHANGES),
    *both("date", "varchar(10)", "'2020-12-31'", KEEPS, KEEPS),
    *widest("time", "'23:59:59.999999'", 15),
    *widest("time(0)", "'23:59:59'", 8),
    *widest("timetz", "'23:59:59.999999-15:59:59'", 24),
    *widest("timestamp", "'4714-11-24 23:59:59.999999 BC'", 29),
    *widest("timestamp(0)", "'4714-11-24 23:59:59 BC'", 22),
    *widest("timestamptz", "'4714-11-24 23:59:59.999999+00 BC'", 32),
    *widest("interval", "'-178956970 years -8 mons -2147483648 days -2562047788:00:54.775807'", 66),
    *widest("interval(0)", "'-178956970 years -8 mons -2147483648 days -2562047788:00:54'", 59),
    *widest("inet", "'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128'", 43),
    *both("inet", "varchar(17)", "'255.255.255.255'", FAILS, CHANGES),
    *both("inet", "cidr", "'10.0.0.1/24'", CHANGES, CHANGES),
    *both("inet", "cidr", "'10.0.0.1'", KEEPS, KEEPS),
    *both("macaddr8", "macaddr", "'08:00:2b:01:02:03:04:05'", FAILS, FAILS),
    *both("macaddr8", "macaddr", "'08:00:2b:ff:fe:03:04:05'", KEEPS, KEEPS),
    *widest("cidr", "'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128'", 43),
    *widest("macaddr", "'08:00:2b:01:02:03'", 17),
    *widest("macaddr8", "'08:00:2b:01:02:03:04:05'", 23),
    *both("numeric", "varchar(1000)", "repeat('9', 1001)::numeric", FAILS, CHANGES),
    *both("jsonb", "varchar(10)", """'{"a": "bcdefghij"}'""", FAILS, CHANGES),
    *both("text", "varchar(5)", "'abcdef'", FAILS, CHANGES),
    *both("varchar(20)", "varchar(10)", "'abcdefghijk'", FAILS, CHANGES),
    *both("varchar(20)", "char(5)", "'abcdef'", FAILS, CHANGES),
    *both("char(8)", "varchar(5)", "'abcdef'", FAILS, CHANGES),
    *both("varchar(10)", "varchar(20)", "'abcdefghij'", KEEPS, KEEPS),
    *both("char(5)", "varchar(5)", "'abcde'", KEEPS, KEEPS),
    ("integer", "varchar(5) USING c::text", "123456", FAILS),
    ("integer", "text USING c::varchar(5)", "123456", CHANGES),
    ("varchar(20)", "varchar(3) USING c::text::varchar(3)", "'abcd'", CHANGES),
    ("varchar(20)", "varchar(3) USING c", "'abcd'", FAILS),
    # Out of range: fails either way.
    *both("bigint", "integer", "2147483648", FAILS, FAILS),
    *both("bigint", "integer", "-2147483648", KEEPS, KEEPS),
    *both("integer", "smallint", "32768", FAILS, FAILS),
    *both("integer", "numeric(9,0)", "-2147483648", FAILS, FAILS),
    *both("integer", "numeric(10,0)", "-2147483648", KEEPS, KEEPS),
    *both("smallint", "numeric(7,2)", "-32768", KEEPS, KEEPS),
    *both("double precision", "real", "'1.23456789'", CHANGES, CHANGES),
    *both("double precision", "real", "'1e300'", FAILS, FAILS),
    # Numbers: rounding changes the value, too many digits before the point fail.
    *both("numeric(10,2)", "numeric(10,1)", "0.05", CHANGES, CHANGES),
    *both("numeric(10,2)", "numeric(5,2)", "1000", FAILS, FAILS),
    *both("numeric", "numeric(5,2)", "0.005", CHANGES, CHANGES),
    *both("numeric", "numeric(5,2)", "1000", FAILS, FAILS),
    *both("numeric", "numeric(5,-2)", "50", CHANGES, CHANGES),
    *both("numeric(10,2)", "integer", "0.5", CHANGES, CHANGES),
    *both("numeric(12,0)", "integer", "2147483648", FAILS, FAILS),
    *both("numeric(9,0)", "integer", "-999999999", KEEPS, KEEPS),
    *both("numeric(4,0)", "smallint", "-9999", KEEPS, KEEPS),
    *both("numeric(2,-3)", "smallint", "99000", FAILS, FAILS),
    *both("double precision", "bigint", "0.5", CHANGES, CHANGES),
    *both("double precision", "bigint", "1e19", FAILS, FAILS),
    *both("real", "integer", "0.5", CHANGES, CHANGES),
    *both("double precision", "numeric", "'0.30000000000000004'", CHANGES, CHANGES),
    *both("real", "numeric", "'1.2345678'", CHANGES, CHANGES),
    *both("double precision", "numeric(10,2)", "0.005", CHANGES, CHANGES),
    *both("double precision", "numeric(10,2)", "1e8", FAILS, FAILS),
    *both("numeric", "double precision", "1.2345678901234567891", CHANGES, CHANGES),
    *both("numeric(16,2)", "double precision", "-99999999999999.99", CHANGES, CHANGES),
    *both("numeric(15,2)", "double precision", "-9999999999999.99", KEEPS, KEEPS),
    *both("numeric(8,0)", "real", "16777217", CHANGES, CHANGES),
    *both("numeric(6,2)", "real", "-9999.99", KEEPS, KEEPS),
    *both("integer", "real", "16777217", CHANGES, CHANGES),
    *both("bigint", "double precision", "9007199254740993", CHANGES, CHANGES),
    *both("smallint", "real", "-32768", KEEPS, KEEPS),
    *both("integer", "double precision", "-2147483648", KEEPS, KEEPS),
    *both("integer", "boolean", "2", FAILS, CHANGES),
    ("boolean", "integer USING c::integer", "true", KEEPS),
    # Text to another type: Django's cast parses every value; without USING PostgreSQL refuses.
    *both("text", "integer", "'007'", FAILS, CHANGES),
    *both("text", "integer", "'abc'", FAILS, FAILS),
    *both("varchar(20)", "smallint", "'+5'", FAILS, CHANGES),
    *both("text", "bigint", "' 5 '", FAILS, CHANGES),
    *both("text", "numeric", "'007.50'", FAILS, CHANGES),
    *both("text", "real", "'007.50'", FAILS, CHANGES),
    *both("text", "double precision", "'007.50'", FAILS, CHANGES),
    *both("text", "boolean", "'yes'", FAILS, CHANGES),
    *both("text", "uuid", "'A0EEBC999C0B4EF8BB6D6BB9BD380A11'", FAILS, CHANGES),
    *both("varchar(40)", "uuid", "'x'", FAILS, FAILS),
    *both("varchar(40)", "uuid", "'{A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11}'", FAILS, CHANGES),
    *both("text", "date", "'2020-1-2'", FAILS, CHANGES),
    *both("text", "time", "'1:02'", FAILS, CHANGES),
    *both("text", "timetz", "'1:02+5'", FAILS, CHANGES),
    *both("text", "timestamp", "'2020-1-2 3:04'", FAILS, CHANGES),
    *both("text", "timestamptz", "'2020-1-2 3:04+00'", FAILS, CHANGES),
    *both("text", "interval", "'90 minutes'", FAILS, CHANGES),
    *both("text", "jsonb", """'{"a": 1, "a": 2}'""", FAILS, CHANGES),
    *both("text", "json", """'{"a": 1, "a": 2}'""", FAILS, KEEPS),
    *both("text", "json", "'abc'", FAILS, FAILS),
    *both("text", "inet", "'2001:DB8::0001/64'", FAILS, CHANGES),
    *both("text", "cidr", "'10.1/16'", FAILS, CHANGES),
    *both("text", "macaddr", "'0800.2b01.0203'", FAILS, CHANGES),
    *both("text", "macaddr8", "'0800.2b01.0203.0405'", FAILS, CHANGES),
    # Times: fewer digits round, a narrower type drops a part.
    *both("timestamp(6)", "timestamp(3)", "'2020-01-01 00:00:00.666666'", CHANGES, CHANGES),
    *both("timestamptz", "timestamptz(0)", "'2020-01-01 00:00:00.666666+00'", CHANGES, CHANGES),
    *both("time", "time(0)", "'00:00:00.666666'", CHANGES, CHANGES),
    *both("timetz", "timetz(3)", "'00:00:00.666666+00'", CHANGES, CHANGES),
    *both("interval(3)", "interval(1)", "'00:00:00.666'", CHANGES, CHANGES),
    *both("timestamptz", "date", "'2020-01-01 10:00:00+00'", CHANGES, CHANGES),
    *both("timestamp", "date", "'2020-01-01 10:00:00'", CHANGES, CHANGES),
    *both("timestamp", "time", "'2020-01-01 10:00:00'", CHANGES, CHANGES),
    *both("timestamptz", "time", "'2020-01-01 10:00:00+00'", CHANGES, CHANGES),
    *both("timestamptz", "timetz", "'2020-01-01 10:00:00+00'", CHANGES, CHANGES),
    *both("timetz", "time", "'10:00:00+05'", CHANGES, CHANGES),
    *both("interval", "time", "'1 day 02:00:00'", CHANGES, CHANGES),
    *both(
        "interval", "interval year to month", "'1 year 2 mons 3 days 04:05:06'", CHANGES, CHANGES
    ),
    *both("interval", "interval hour", "'1 year 2 mons 3 days 04:05:06'", CHANGES, CHANGES),
    *both("interval", "interval second", "'1 year 2 mons 3 days 04:05:06.5'", KEEPS, KEEPS),
    *both("json", "jsonb", """'{"a": 1, "a": 2}'""", CHANGES, CHANGES),
    # Widening keeps every value.
    *both("timestamp(3)", "timestamp(6)", "'2020-01-01 00:00:00.123'", KEEPS, KEEPS),
    *both("timestamp", "timestamptz", "'2023-03-26 02:30:00'", KEEPS, KEEPS),
    *both("timestamptz", "timestamp", "'2023-10-29 01:30:00+00'", KEEPS, KEEPS),
    *both("jsonb", "json", """'{"a": 1}'""", KEEPS, KEEPS),
    *both("date", "timestamp", "'2020-01-01'", KEEPS, KEEPS),
    *both("integer", "bigint", "-2147483648", KEEPS, KEEPS),
    *both("numeric(10,2)", "numeric(12,2)", "-99999999.99", KEEPS, KEEPS),
    *both("numeric(10,2)", "numeric(12,3)", "-99999999.99", KEEPS, KEEPS),
    *both("numeric(10,2)", "numeric", "-99999999.99", KEEPS, KEEPS),
    *both("real", "double precision", "0.1", KEEPS, KEEPS),
    *both("integer", "numeric", "-2147483648", KEEPS, KEEPS),
    *both("integer", "text", "-2147483648", KEEPS, KEEPS),
    *both("uuid", "varchar", "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'", KEEPS, KEEPS),
    *both("double precision", "text", "'-2.2250738585072014e-308'", KEEPS, KEEPS),
]


def convert(old: str, clause: str, value: str, zone: str = "UTC") -> tuple[str, str | None]:
    """What ``ALTER … TYPE clause`` does to ``value`` on PostgreSQL, and its text after."""
    with transaction.atomic():  # a savepoint: the table goes with it
        result = _convert(old, clause, value, zone)
        transaction.set_rollback(True)
    return result


def _convert(old: str, clause: str, value: str, zone: str) -> tuple[str, str | None]:
    with connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL TimeZone = '{zone}'")
        cursor.execute(f"CREATE TABLE scratch (c {old}, original {old})")
        cursor.execute(f"INSERT INTO scratch VALUES ({value}, {value})")
        try:
            with transaction.atomic():
                cursor.execute(f"ALTER TABLE scratch ALTER COLUMN c TYPE {clause}")
        except DatabaseError as exc:
            # Out of range, too long, does not parse; or no automatic cast at all.
            if not isinstance(exc, DataError) and "cannot be cast automatically" not in str(exc):
                raise
            return FAILS, None
        cursor.execute(
            "SELECT c::text, c::text = original::text, typcategory = 'S' FROM scratch, pg_type"
            " WHERE pg_type.oid = pg_typeof(c)"
        )
        text, same_text, to_text = cursor.fetchone()
        if same_text or to_text:
            # The same text is the same value; in a text column, the text is the value.
            return (KEEPS if same_text else CHANGES), text
        # Read the converted value back as the old type, from its text or by a cast:
        # unchanged values compare equal.
        for back in (f"c::text::{old}", f"c::{old}"):
            try:
                with transaction.atomic():
                    cursor.execute(f"SELECT {back} = original FROM scratch")
                    if cursor.fetchone()[0]:
                        return KEEPS, text
            except DatabaseError:
                continue  # the text no longer reads as the old type, or there is no cast back
    return CHANGES, text


@pytest.mark.parametrize(("old", "clause", "value", "effect"), CASES)
def test_postgresql_converts_the_value_so(old, clause, value, effect):
    assert convert(old, clause, value)[0] == effect


def _worst() -> list[tuple[str, str, str]]:
    worst: dict[tuple[str, str], str] = {}
    for old, clause, _, effect in CASES:
        known = worst.get((old, clause), KEEPS)
        worst[old, clause] = min(known, effect, key=WORST.index)
    return [(old, clause, effect) for (old, clause), effect in worst.items()]


STATEMENTS = _worst()


@pytest.mark.parametrize(("old", "clause", "effect"), STATEMENTS)
def test_rule_agrees_with_postgresql(old, clause, effect):
    findings = judge([alter(clause)], setup=[item(old)])
    if effect == KEEPS:
        leaves_alone("SM206", findings)
        return
    finding = flags("SM206", findings)
    assert finding.severity.value == SEVERITY[effect]
    assert (finding.table, finding.rewrites_table) == ("testapp_item", True)


EXAMPLE = re.compile(r"'([^']*)' becomes '([^']*)'|such as '([^']*)'")


@pytest.mark.parametrize(
    ("old", "clause"), [(old, clause) for old, clause, effect in STATEMENTS if effect != KEEPS]
)
def test_the_values_a_message_names_do_what_it_says(old, clause):
    """Each value a message cites, run through the statement on PostgreSQL, does as it says."""
    message = flags("SM206", judge([alter(clause)], setup=[item(old)])).message
    for before, after, failing in EXAMPLE.findall(message):
        effect, text = convert(old, clause, f"'{before or failing}'")
        if failing:
            assert effect == FAILS, message
        else:
            assert effect == CHANGES, message
            # char(n) pads, and its text drops the padding.
            assert text == (after.rstrip() if "char(" in clause else after), message


def test_spaces_past_the_limit_are_cut_without_an_error():
    """SQL's exception to "value too long": the message says so, the severity stays risky."""
    assert convert("text", "varchar(3)", "'abc   '") == (CHANGES, "abc")
    assert convert("text", "varchar(3)", "'abcd  '")[0] == FAILS
    finding = flags("SM206", judge([alter("varchar(3)")], setup=[item("text")]))
    assert "spaces at the end" in finding.message
    assert finding.severity.value == "risky"


def test_postgresql_reads_timestamps_in_the_session_time_zone():
    """Outside UTC the hour the clocks repeat has two instants, the hour they skip none."""
    paris = "Europe/Paris"
    first = convert("timestamptz", "timestamp", "'2023-10-29 00:30:00+00'", zone=paris)
    second = convert("timestamptz", "timestamp", "'2023-10-29 01:30:00+00'", zone=paris)
    assert first[1] == second[1] == "2023-10-29 02:30:00"
    assert CHANGES in (first[0], second[0])
    skipped = convert("timestamp", "timestamptz", "'2023-03-26 02:30:00'", zone=paris)
    assert skipped == (CHANGES, "2023-03-26 03:30:00+02")


@pytest.mark.parametrize(
    ("old", "new"), [("timestamptz", "timestamp"), ("timestamp", "timestamptz")]
)
def test_timestamp_and_timestamptz_are_lossy_outside_utc(monkeypatch, old, new):
    for clause in (new, f"{new} USING c::{new}"):
        assert not [f for f in judge([alter(clause)], setup=[item(old)]) if f.code == "SM206"]
    monkeypatch.setitem(connection.__dict__, "timezone_name", "Europe/Paris")
    for clause in (new, f"{new} USING c::{new}"):
        finding = flags("SM206", judge([alter(clause)], setup=[item(old)]))
        assert finding.severity.value == "destructive"
        assert "Europe/Paris" in finding.message


def test_timestamptz_text_is_wider_outside_utc(monkeypatch):
    """Before time zones, a zone's offset was its local mean time, seconds and all."""
    value = "'4714-11-24 23:59:59.999999+00:19:32 BC'"
    zone = "Europe/Amsterdam"
    assert convert("timestamptz", "varchar(38)", value, zone=zone)[0] == KEEPS
    assert convert("timestamptz", "varchar(37)", value, zone=zone)[0] == FAILS
    leaves_alone("SM206", judge([alter("varchar(37)")], setup=[item("timestamptz")]))
    monkeypatch.setitem(connection.__dict__, "timezone_name", zone)
    leaves_alone("SM206", judge([alter("varchar(38)")], setup=[item("timestamptz")]))
    finding = flags("SM206", judge([alter("varchar(37)")], setup=[item("timestamptz")]))
    assert f"such as {value}" in finding.message


def test_text_to_an_enum_only_fails():
    with connection.cursor() as cursor:
        cursor.execute("CREATE TYPE mood AS ENUM ('happy', 'sad')")
    assert convert("text", "mood USING c::mood", "'happy'")[0] == KEEPS
    assert convert("text", "mood USING c::mood", "'Happy'")[0] == FAILS
    finding = flags("SM206", judge([alter("mood USING c::mood")], setup=[item("text")]))
    assert finding.severity.value == "risky"
    assert finding.message.endswith("fails on the first value that is not a valid mood.")


def test_leaves_a_using_expression_of_its_own_alone():
    """PostgreSQL truncates here too, but someone wrote the conversion on purpose."""
    assert convert("varchar(20)", "varchar(3) USING lower(c)::varchar(3)", "'abcd'")[0] == CHANGES
    clause = "varchar(3) USING lower(c)::varchar(3)"
    leaves_alone("SM206", judge([alter(clause)], setup=[item("varchar(20)")]))


UUID = "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'"
#: (old field, new field, a value, what the statement Django renders does to it).
FIELDS = [
    (models.SmallIntegerField(), models.CharField(max_length=5), "-32768", CHANGES),
    (models.SmallIntegerField(), models.CharField(max_length=6), "-32768", KEEPS),
    (models.IntegerField(), models.CharField(max_length=10), "-2147483648", CHANGES),
    (models.IntegerField(), models.CharField(max_length=11), "-2147483648", KEEPS),
    (models.BigIntegerField(), models.CharField(max_length=19), "-9223372036854775808", CHANGES),
    (models.BigIntegerField(), models.CharField(max_length=20), "-9223372036854775808", KEEPS),
    (
        models.DecimalField(max_digits=5, decimal_places=2),
        models.CharField(max_length=6),
        "-999.99",
        CHANGES,
    ),
    (
        models.DecimalField(max_digits=5, decimal_places=2),
        models.CharField(max_length=7),
        "-999.99",
        KEEPS,
    ),
    (models.FloatField(), models.CharField(max_length=23), "'-2.2250738585072014e-308'", CHANGES),
    (models.BooleanField(), models.CharField(max_length=4), "false", CHANGES),
    (models.BooleanField(), models.CharField(max_length=5), "false", KEEPS),
    (models.UUIDField(), models.CharField(max_length=35), UUID, CHANGES),
    (models.UUIDField(), models.CharField(max_length=36), UUID, KEEPS),
    (models.DateField(), models.CharField(max_length=12), "'4714-11-24 BC'", CHANGES),
    (models.TimeField(), models.CharField(max_length=14), "'23:59:59.999999'", CHANGES),
    (
        models.DateTimeField(),
        models.CharField(max_length=31),
        "'4714-11-24 23:59:59.999999+00 BC'",
        CHANGES,
    ),
    (
        models.DateTimeField(),
        models.CharField(max_length=32),
        "'4714-11-24 23:59:59.999999+00 BC'",
        KEEPS,
    ),
    (
        models.DurationField(),
        models.CharField(max_length=65),
        "'-178956970 years -8 mons -2147483648 days -2562047788:00:54.775807'",
        CHANGES,
    ),
    (
        models.GenericIPAddressField(),
        models.CharField(max_length=39),
        "'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/127'",
        CHANGES,
    ),
    (models.TextField(), models.CharField(max_length=10), "'abcdefghijk'", CHANGES),
    (models.CharField(max_length=20), models.CharField(max_length=10), "'abcdefghijk'", FAILS),
    (models.CharField(max_length=20), models.IntegerField(), "'007'", CHANGES),
    (models.CharField(max_length=20), models.JSONField(), """'{"a": 1, "a": 2}'""", CHANGES),
    (models.BigIntegerField(), models.IntegerField(), "2147483648", FAILS),
    (
        models.DecimalField(max_digits=10, decimal_places=2),
        models.DecimalField(max_digits=10, decimal_places=1),
        "0.05",
        CHANGES,
    ),
    (
        models.DecimalField(max_digits=10, decimal_places=2),
        models.DecimalField(max_digits=5, decimal_places=2),
        "1000",
        FAILS,
    ),
    (models.DecimalField(max_digits=10, decimal_places=2), models.IntegerField(), "0.5", CHANGES),
    (
        models.DecimalField(max_digits=20, decimal_places=2),
        models.FloatField(),
        "12345678901234567.89",
        CHANGES,
    ),
    (
        models.DecimalField(max_digits=15, decimal_places=2),
        models.FloatField(),
        "-9999999999999.99",
        KEEPS,
    ),
    (models.FloatField(), models.DecimalField(max_digits=10, decimal_places=2), "0.005", CHANGES),
    (models.FloatField(), models.IntegerField(), "0.5", CHANGES),
    (models.BigIntegerField(), models.FloatField(), "9007199254740993", CHANGES),
    (models.DateTimeField(), models.DateField(), "'2020-01-01 10:00:00+00'", CHANGES),
    (models.DateTimeField(), models.TimeField(), "'2020-01-01 10:00:00+00'", CHANGES),
    (models.DurationField(), models.TimeField(), "'1 day 02:00:00'", CHANGES),
    (models.IntegerField(), models.BooleanField(), "2", CHANGES),
    (models.BooleanField(), models.IntegerField(), "true", KEEPS),
    (models.IntegerField(), models.BigIntegerField(), "-2147483648", KEEPS),
    (models.CharField(max_length=10), models.TextField(), "'abcdefghij'", KEEPS),
]


def _item(field: models.Field) -> migrations.CreateModel:
    return migrations.CreateModel(
        "Item", [("id", models.BigAutoField(primary_key=True)), ("c", field.clone())]
    )


def _judge_field(old: models.Field, new: models.Field, engine: str | None = None):
    op = migrations.AlterField("item", "c", new.clone())
    return judge([op], setup=[_item(old)], engine=engine)


def _rendered_type_change(old: models.Field, new: models.Field) -> str:
    """The ``TYPE …`` clause Django renders for ``AlterField`` from ``old`` to ``new``."""
    before = ProjectState()
    _item(old).state_forwards(APP, before)
    after = before.clone()
    op = migrations.AlterField("item", "c", new.clone())
    op.state_forwards(APP, after)
    with connection.schema_editor(collect_sql=True, atomic=False) as editor:
        op.database_forwards(APP, editor, before, after)
    (sql,) = [s for s in editor.collected_sql if ' ALTER COLUMN "c" TYPE ' in s]
    return sql.split(' ALTER COLUMN "c" TYPE ', 1)[1].rstrip(";").replace('"c"', "c")


@pytest.mark.parametrize(("old", "new", "value", "effect"), FIELDS)
def test_alter_field_sql_does_this_on_postgresql(old, new, value, effect):
    """The ALTER statement Django renders, run on a real table holding the boundary value."""
    clause = _rendered_type_change(old, new)
    assert convert(old.db_type(connection), clause, value)[0] == effect


@pytest.mark.parametrize("engine", [None, ZERO_DOWNTIME])
@pytest.mark.parametrize(("old", "new", "value", "effect"), FIELDS)
def test_alter_field_is_judged_so(old, new, value, effect, engine):
    findings = _judge_field(old, new, engine)
    if effect == KEEPS:
        leaves_alone("SM206", findings)
    else:
        assert flags("SM206", findings).severity.value == SEVERITY[effect]


def test_alter_field_messages():
    item_model = migrations.CreateModel(
        "Item",
        [
            ("id", models.BigAutoField(primary_key=True)),
            ("name", models.CharField(max_length=20)),
            ("qty", models.BigIntegerField()),
            ("code", models.IntegerField()),
            ("notes", models.TextField()),
        ],
    )
    findings = judge(
        [
            migrations.AlterField("item", "name", models.CharField(max_length=10)),
            migrations.AlterField("item", "qty", models.IntegerField()),
            migrations.AlterField("item", "code", models.CharField(max_length=10)),
            migrations.AlterField("item", "notes", models.CharField(max_length=10)),
        ],
        setup=[item_model],
    )
    assert [(f.severity.value, f.message) for f in findings if f.code == "SM206"] == [
        (
            "risky",
            "ALTER COLUMN name TYPE varchar(10) on testapp_item (was varchar(20)) fails on "
            "values longer than 10 characters (those longer only by spaces at the end lose "
            "the spaces without an error).",
        ),
        (
            "risky",
            "ALTER COLUMN qty TYPE integer on testapp_item (was bigint) fails on values out of "
            "the range of integer (such as '2147483648').",
        ),
        (
            "destructive",
            "ALTER COLUMN code TYPE varchar(10) on testapp_item (was integer) truncates values "
            "longer than 10 characters without an error (the cast is explicit) "
            "('-2147483648' becomes '-214748364').",
        ),
        (
            "destructive",
            "ALTER COLUMN notes TYPE varchar(10) on testapp_item (was text) truncates values "
            "longer than 10 characters without an error (the cast is explicit).",
        ),
    ]


def test_auto_field_primary_key_to_char_field():
    setup = [migrations.CreateModel("Item", [("id", models.AutoField(primary_key=True))])]
    op = migrations.AlterField("item", "id", models.CharField(max_length=10, primary_key=True))
    finding = flags("SM206", judge([op], setup=setup))
    assert finding.severity.value == "destructive"
    assert "'-2147483648' becomes '-214748364'" in finding.message


def test_char_field_to_integer_field():
    op = migrations.AlterField("item", "c", models.IntegerField())
    finding = flags("SM206", judge([op], setup=[_item(models.CharField(max_length=20))]))
    assert "fails on the first value that is not a valid integer" in finding.message
    assert "'007' becomes '7'" in finding.message
    assert "CheckConstraint" in finding.hint


def test_leaves_unknown_and_new_tables_alone():
    leaves_alone("SM206", judge([migrations.RunSQL("ALTER TABLE t ALTER c TYPE int")]))
    item_model = _item(models.BigIntegerField())
    op = migrations.AlterField("item", "c", models.IntegerField())
    leaves_alone("SM206", judge([item_model, op]))
    # An enum or a domain: its text width is unknown.
    leaves_alone("SM206", judge([alter("varchar(3)")], setup=[item("mood")]))


def test_arrays_are_left_alone():
    leaves_alone("SM206", judge([alter("varchar(3)[]")], setup=[item("text[]")]))
