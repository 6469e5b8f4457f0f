from __future__ import annotations

import pytest
from django.db import connection, migrations, models

from tests.rules.judge import ZERO_DOWNTIME, flags, judge, leaves_alone

ITEM = migrations.CreateModel(
    "Item",
    [
        ("id", models.BigAutoField(primary_key=True)),
        ("n", models.IntegerField(null=True)),
        ("m", models.IntegerField(null=True)),
    ],
)
NOT_NULL = migrations.AlterField("item", "n", models.IntegerField())
BOTH = pytest.mark.parametrize("engine", [None, ZERO_DOWNTIME])
SET_NOT_NULL = "ALTER TABLE testapp_item ALTER COLUMN n SET NOT NULL"


def run(*sql):
    return [migrations.RunSQL(s) for s in sql]


@BOTH
def test_alter_field_to_not_null(engine):
    findings = judge([NOT_NULL], setup=[ITEM], engine=engine)
    if engine == ZERO_DOWNTIME:
        # CHECK (n IS NOT NULL) NOT VALID, VALIDATE, SET NOT NULL: no scan under the lock.
        leaves_alone("SM106", findings)
        return
    finding = flags("SM106", findings)
    assert finding.table == "testapp_item"
    assert finding.lock.value == "ACCESS EXCLUSIVE"
    assert finding.rewrites_table is False
    assert finding.sql == 'ALTER TABLE "testapp_item" ALTER COLUMN "n" SET NOT NULL'
    assert "testapp_item.n" in finding.message
    assert (
        'ADD CONSTRAINT "testapp_item_n_notnull" CHECK ("n" IS NOT NULL) NOT VALID' in finding.hint
    )
    assert "atomic = False" in finding.hint
    assert "PostgreSQL 18" not in finding.hint


@BOTH
def test_alter_field_to_not_null_with_a_default(engine):
    op = migrations.AlterField("item", "n", models.IntegerField(default=0))
    findings = judge([op], setup=[ITEM], engine=engine)
    if engine == ZERO_DOWNTIME:
        leaves_alone("SM106", findings)
    else:
        flags("SM106", findings)


@BOTH
def test_before_postgresql_12_a_check_does_not_help(engine):
    finding = flags("SM106", judge([NOT_NULL], setup=[ITEM], engine=engine, pg_version=11))
    assert finding.hint.startswith("Before PostgreSQL 12 SET NOT NULL always scans")


@pytest.mark.parametrize(
    "sql",
    [
        SET_NOT_NULL,
        "alter table  testapp_item\n alter n set not null",
        'ALTER TABLE ONLY "testapp_item" ALTER COLUMN "n" SET NOT NULL, '
        "ALTER COLUMN m DROP NOT NULL",
    ],
)
def test_flags_handwritten_set_not_null(sql):
    assert flags("SM106", judge(run(sql), setup=[ITEM])).table == "testapp_item"


@pytest.mark.parametrize(
    "check",
    [
        "CHECK (n IS NOT NULL)",
        "CHECK (n > 0 AND n IS NOT NULL)",
    ],
)
def test_leaves_alone_after_a_validated_check(check):
    add = f"ALTER TABLE testapp_item ADD CONSTRAINT c {check} NOT VALID"
    validate = "ALTER TABLE testapp_item VALIDATE CONSTRAINT c"
    findings = judge(run(add, validate, SET_NOT_NULL), setup=[ITEM], atomic=False)
    leaves_alone("SM106", findings)


def test_leaves_alone_after_a_check_added_valid():
    add = "ALTER TABLE testapp_item ADD CONSTRAINT c CHECK (n IS NOT NULL)"
    leaves_alone("SM106", judge(run(add, SET_NOT_NULL), setup=[ITEM]))


@pytest.mark.parametrize(
    "before",
    [
        # Never validated.
        ["ALTER TABLE testapp_item ADD CONSTRAINT c CHECK (n IS NOT NULL) NOT VALID"],
        # Validated, then dropped.
        [
            "ALTER TABLE testapp_item ADD CONSTRAINT c CHECK (n IS NOT NULL)",
            "ALTER TABLE testapp_item DROP CONSTRAINT c",
        ],
        # About another column, or not enough to prove it.
        ["ALTER TABLE testapp_item ADD CONSTRAINT c CHECK (m IS NOT NULL)"],
        ["ALTER TABLE testapp_item ADD CONSTRAINT c CHECK (n IS NOT NULL OR m > 0)"],
        # On another table.
        ["ALTER TABLE other ADD CONSTRAINT c CHECK (n IS NOT NULL)"],
    ],
)
def test_flags_when_no_valid_check_proves_it(before):
    flags("SM106", judge(run(*before, SET_NOT_NULL), setup=[ITEM], atomic=False))


def test_postgresql_18_not_null_constraints():
    add = "ALTER TABLE testapp_item ADD CONSTRAINT n_not_null NOT NULL n"
    finding = flags("SM106", judge(run(add), setup=[ITEM], pg_version=18))
    assert 'NOT NULL "n" NOT VALID' in finding.hint
    add_not_valid = f"{add} NOT VALID"
    validate = "ALTER TABLE testapp_item VALIDATE CONSTRAINT n_not_null"
    findings = judge(run(add_not_valid, validate, SET_NOT_NULL), setup=[ITEM], pg_version=18)
    leaves_alone("SM106", findings)


def test_leaves_a_table_created_in_the_same_migration_alone():
    leaves_alone("SM106", judge([ITEM, NOT_NULL]))


def _scans(*statements: str) -> int:
    """Sequential scans of a scratch table (3 rows) made by the last of ``statements``."""
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE scratch (n int, m int)")
        cursor.execute("INSERT INTO scratch SELECT g, g FROM generate_series(1, 3) g")
        for statement in statements[:-1]:
            cursor.execute(statement)
        cursor.execute("SELECT pg_stat_get_xact_numscans('scratch'::regclass)")
        before = cursor.fetchone()[0]
        cursor.execute(statements[-1])
        cursor.execute("SELECT pg_stat_get_xact_numscans('scratch'::regclass)")
        return int(cursor.fetchone()[0] - before)


@pytest.mark.parametrize(
    ("before", "scans"),
    [
        ([], 1),
        (["ALTER TABLE scratch ADD CONSTRAINT c CHECK (n IS NOT NULL) NOT VALID"], 1),
        (
            [
                "ALTER TABLE scratch ADD CONSTRAINT c CHECK (n IS NOT NULL) NOT VALID",
                "ALTER TABLE scratch VALIDATE CONSTRAINT c",
            ],
            0,
        ),
        (["ALTER TABLE scratch ADD CONSTRAINT c CHECK (n > 0 AND n IS NOT NULL)"], 0),
        (["ALTER TABLE scratch ADD CONSTRAINT c CHECK (n IS NOT NULL OR m > 0)"], 1),
    ],
)
def test_postgresql_skips_the_scan_given_a_valid_check(before, scans):
    assert _scans(*before, "ALTER TABLE scratch ALTER COLUMN n SET NOT NULL") == scans


ADD_CHECK = "ALTER TABLE testapp_item ADD CONSTRAINT item_n_notnull CHECK (n IS NOT NULL) NOT VALID"
VALIDATE = "ALTER TABLE testapp_item VALIDATE CONSTRAINT item_n_notnull"
DROP_CHECK = "ALTER TABLE testapp_item DROP CONSTRAINT item_n_notnull"


def test_leaves_alone_after_a_check_validated_by_earlier_migrations():
    facts: dict = {}
    judge(run(ADD_CHECK), setup=[ITEM], facts=facts)
    judge(run(VALIDATE), setup=[ITEM], facts=facts)
    leaves_alone("SM106", judge([NOT_NULL], setup=[ITEM], facts=facts))


def test_flags_when_earlier_migrations_left_the_check_unvalidated_or_dropped():
    facts: dict = {}
    judge(run(ADD_CHECK), setup=[ITEM], facts=facts)
    flags("SM106", judge([NOT_NULL], setup=[ITEM], facts=facts))
    judge(run(VALIDATE), setup=[ITEM], facts=facts)
    judge(run(DROP_CHECK), setup=[ITEM], facts=facts)
    flags("SM106", judge([NOT_NULL], setup=[ITEM], facts=facts))


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("constraint", "scans"),
    [
        ("CONSTRAINT item_n_notnull CHECK (n IS NOT NULL)", False),
        ("CONSTRAINT item_n_positive CHECK (n > 0)", True),
        ("", True),
    ],
)
def test_reads_validated_checks_on_the_live_table(constraint, scans):
    # The migration that added the check was applied long ago: only the catalog knows.
    comma = ", " if constraint else ""
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TABLE testapp_item (id bigint PRIMARY KEY, n integer, m integer{comma}"
            f"{constraint})"
        )
    findings = judge([NOT_NULL], setup=[ITEM], tables={"testapp_item": 50_000})
    if scans:
        flags("SM106", findings)
    else:
        leaves_alone("SM106", findings)


@pytest.mark.django_db
def test_a_live_check_dropped_earlier_in_the_deploy_does_not_count():
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE testapp_item (id bigint PRIMARY KEY, n integer, m integer, "
            "CONSTRAINT item_n_notnull CHECK (n IS NOT NULL))"
        )
    facts: dict = {}
    live = {"testapp_item": 50_000}
    judge(run(DROP_CHECK), setup=[ITEM], tables=live, facts=facts)
    flags("SM106", judge([NOT_NULL], setup=[ITEM], tables=live, facts=facts))
