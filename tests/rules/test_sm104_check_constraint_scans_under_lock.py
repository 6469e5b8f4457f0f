from __future__ import annotations

import pytest
from django.db import connection, migrations, models
from django.db.models import Q

from tests.rules.judge import ZERO_DOWNTIME, flags, judge, leaves_alone

ITEM = migrations.CreateModel(
    "Item",
    [("id", models.BigAutoField(primary_key=True)), ("n", models.IntegerField(null=True))],
)
CHECK = models.CheckConstraint(condition=Q(n__gte=0), name="item_n_positive")
BOTH = pytest.mark.parametrize("engine", [None, ZERO_DOWNTIME])
ADD_NOT_VALID = "ALTER TABLE testapp_item ADD CONSTRAINT c CHECK (n > 0) NOT VALID"
VALIDATE = "ALTER TABLE testapp_item VALIDATE CONSTRAINT c"


@BOTH
def test_add_check_constraint(engine):
    findings = judge([migrations.AddConstraint("item", CHECK)], setup=[ITEM], engine=engine)
    if engine == ZERO_DOWNTIME:
        # NOT VALID, then VALIDATE, each in a transaction of its own.
        leaves_alone("SM104", findings)
        return
    finding = flags("SM104", findings)
    assert finding.table == "testapp_item"
    assert finding.lock.value == "ACCESS EXCLUSIVE"
    assert finding.rewrites_table is False
    assert (
        finding.sql
        == 'ALTER TABLE "testapp_item" ADD CONSTRAINT "item_n_positive" CHECK ("n" >= 0)'
    )
    assert 'ADD CONSTRAINT "item_n_positive" CHECK (n >= 0) NOT VALID' in finding.hint
    assert 'VALIDATE CONSTRAINT "item_n_positive"' in finding.hint


@BOTH
def test_new_positive_integer_field_checks_every_row(engine):
    # Both backends put the check in the column definition: PostgreSQL scans the table.
    field = models.PositiveIntegerField(null=True)
    findings = judge([migrations.AddField("item", "qty", field)], setup=[ITEM], engine=engine)
    finding = flags("SM104", findings)
    assert finding.sql == (
        'ALTER TABLE "testapp_item" ADD COLUMN "qty" integer NULL CHECK ("qty" >= 0)'
    )
    assert "ADD COLUMN qty" in finding.message
    assert '"testapp_item_qty_check" CHECK (qty >= 0) NOT VALID' in finding.hint


@pytest.mark.parametrize(
    "sql",
    [
        "alter table testapp_item add constraint c check (n > 0)",
        "ALTER TABLE\n  testapp_item ADD CHECK (n > 0 AND n < 10)",
        'ALTER TABLE "testapp_item" ADD COLUMN m int CHECK (m <> 1)',
    ],
)
def test_flags_handwritten_checks(sql):
    flags("SM104", judge([migrations.RunSQL(sql)], setup=[ITEM]))


@pytest.mark.parametrize("atomic", [True, False])
def test_not_valid_then_validate_in_separate_transactions(atomic):
    findings = judge([migrations.RunSQL(ADD_NOT_VALID)], setup=[ITEM], atomic=atomic)
    leaves_alone("SM104", findings)
    findings = judge(
        [migrations.RunSQL(ADD_NOT_VALID), migrations.RunSQL(VALIDATE)],
        setup=[ITEM],
        atomic=False,
    )
    leaves_alone("SM104", findings)


@BOTH
def test_validate_in_the_transaction_of_the_add(engine):
    findings = judge(
        [migrations.RunSQL(ADD_NOT_VALID), migrations.RunSQL(VALIDATE)],
        setup=[ITEM],
        engine=engine,
    )
    if engine == ZERO_DOWNTIME:
        # The zero-downtime backend never wraps a migration in a transaction.
        leaves_alone("SM104", findings)
        return
    finding = flags("SM104", findings)
    assert finding.sql == ADD_NOT_VALID
    assert "the migration is atomic" in finding.message
    assert "later migration" in finding.hint


def test_validate_in_the_same_query_string():
    # One list item is one query string: one implicit transaction, even with atomic = False.
    findings = judge(
        [migrations.RunSQL([f"{ADD_NOT_VALID}; {VALIDATE}"])], setup=[ITEM], atomic=False
    )
    assert "one query string" in flags("SM104", findings).message


def test_validating_another_constraint_is_fine():
    other = "ALTER TABLE testapp_item VALIDATE CONSTRAINT other"
    findings = judge([migrations.RunSQL(ADD_NOT_VALID), migrations.RunSQL(other)], setup=[ITEM])
    leaves_alone("SM104", findings)


def test_leaves_a_table_created_in_the_same_migration_alone():
    leaves_alone("SM104", judge([ITEM, migrations.AddConstraint("item", CHECK)]))


def _scans(statement: str) -> int:
    """Sequential scans of a scratch table (with 3 rows) made by ``statement``."""
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE scratch (n int)")
        cursor.execute("INSERT INTO scratch SELECT g FROM generate_series(1, 3) g")
        cursor.execute("SELECT pg_stat_get_xact_numscans('scratch'::regclass)")
        before = cursor.fetchone()[0]
        cursor.execute(statement)
        cursor.execute("SELECT pg_stat_get_xact_numscans('scratch'::regclass)")
        return int(cursor.fetchone()[0] - before)


@pytest.mark.parametrize(
    ("statement", "scans"),
    [
        ("ALTER TABLE scratch ADD CONSTRAINT c CHECK (n > 0)", 1),
        ("ALTER TABLE scratch ADD CONSTRAINT c CHECK (n > 0) NOT VALID", 0),
        # A new, all-NULL column with a check: still scanned.
        ("ALTER TABLE scratch ADD COLUMN m int NULL CHECK (m >= 0)", 1),
        ("ALTER TABLE scratch ADD COLUMN m int NULL", 0),
    ],
)
def test_postgresql_scans_for_a_check_unless_not_valid(statement, scans):
    assert _scans(statement) == scans
