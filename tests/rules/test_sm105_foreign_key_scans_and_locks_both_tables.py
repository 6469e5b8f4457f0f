from __future__ import annotations

import pytest
from django.db import connection, migrations, models

from tests.rules.judge import ZERO_DOWNTIME, flags, judge, leaves_alone

# The zero-downtime backend warns about the operations it cannot make safe; the
# rules judge the SQL it emits regardless.
pytestmark = pytest.mark.filterwarnings(
    "ignore::django_zero_downtime_migrations.backends.postgres.schema.UnsafeOperationWarning"
)


OTHER = migrations.CreateModel("Other", [("id", models.BigAutoField(primary_key=True))])
ITEM = migrations.CreateModel(
    "Item",
    [
        ("id", models.BigAutoField(primary_key=True)),
        ("other_ref", models.BigIntegerField(null=True)),
    ],
)
SETUP = [OTHER, ITEM]
BOTH = pytest.mark.parametrize("engine", [None, ZERO_DOWNTIME])
ADD_NOT_VALID = (
    "ALTER TABLE testapp_item ADD CONSTRAINT fk FOREIGN KEY (other_ref) "
    "REFERENCES testapp_other (id) NOT VALID"
)
VALIDATE = "ALTER TABLE testapp_item VALIDATE CONSTRAINT fk"


@BOTH
def test_alter_field_to_a_foreign_key(engine):
    field = models.ForeignKey("testapp.Other", models.CASCADE, null=True, db_column="other_ref")
    op = migrations.AlterField("item", "other_ref", field)
    findings = judge([op], setup=SETUP, engine=engine)
    if engine == ZERO_DOWNTIME:
        # ADD CONSTRAINT ... NOT VALID, then VALIDATE CONSTRAINT, outside a transaction.
        leaves_alone("SM105", findings)
        return
    finding = flags("SM105", findings)
    assert finding.table == "testapp_item"
    assert finding.lock.value == "SHARE ROW EXCLUSIVE"
    assert finding.rewrites_table is False
    assert "testapp_item and testapp_other" in finding.message
    assert finding.sql.endswith("DEFERRABLE INITIALLY DEFERRED")
    assert "REFERENCES testapp_other (id) DEFERRABLE INITIALLY DEFERRED NOT VALID" in finding.hint
    assert "VALIDATE CONSTRAINT" in finding.hint


@BOTH
def test_leaves_a_new_nullable_foreign_key_alone(engine):
    # PostgreSQL does not check a new column that is all NULL.
    field = models.ForeignKey("testapp.Other", models.CASCADE, null=True)
    findings = judge([migrations.AddField("item", "other", field)], setup=SETUP, engine=engine)
    leaves_alone("SM105", findings)


@BOTH
def test_new_foreign_key_with_a_default(engine):
    field = models.ForeignKey("testapp.Other", models.CASCADE, default=1)
    findings = judge([migrations.AddField("item", "other", field)], setup=SETUP, engine=engine)
    if engine == ZERO_DOWNTIME:
        # The column is added without the constraint, which comes NOT VALID, then VALIDATE.
        leaves_alone("SM105", findings)
        return
    finding = flags("SM105", findings)
    assert finding.lock.value == "ACCESS EXCLUSIVE"
    assert "ADD COLUMN other_id with a default" in finding.message
    assert "db_constraint=False" in finding.hint


@BOTH
def test_leaves_a_new_table_alone(engine):
    new = migrations.CreateModel(
        "New",
        [
            ("id", models.BigAutoField(primary_key=True)),
            ("other", models.ForeignKey("testapp.Other", models.CASCADE)),
        ],
    )
    leaves_alone("SM105", judge([new], setup=[OTHER], engine=engine))


@pytest.mark.parametrize(
    "sql",
    [
        "ALTER TABLE testapp_item ADD CONSTRAINT fk FOREIGN KEY (other_ref) "
        "REFERENCES testapp_other (id)",
        "alter table testapp_item add foreign key (other_ref) references testapp_other",
        'ALTER TABLE "testapp_item"\n ADD COLUMN o bigint DEFAULT 1 REFERENCES testapp_other',
    ],
)
def test_flags_handwritten_foreign_keys(sql):
    finding = flags("SM105", judge([migrations.RunSQL(sql)], setup=SETUP))
    assert "testapp_other" in finding.message


def test_not_valid_then_validate_in_separate_transactions():
    leaves_alone("SM105", judge([migrations.RunSQL(ADD_NOT_VALID)], setup=SETUP))
    findings = judge(
        [migrations.RunSQL(ADD_NOT_VALID), migrations.RunSQL(VALIDATE)],
        setup=SETUP,
        atomic=False,
    )
    leaves_alone("SM105", findings)


@BOTH
def test_validate_in_the_transaction_of_the_add(engine):
    findings = judge(
        [migrations.RunSQL(ADD_NOT_VALID), migrations.RunSQL(VALIDATE)],
        setup=SETUP,
        engine=engine,
    )
    if engine == ZERO_DOWNTIME:
        leaves_alone("SM105", findings)
        return
    finding = flags("SM105", findings)
    assert finding.sql == ADD_NOT_VALID
    assert finding.lock.value == "SHARE ROW EXCLUSIVE"
    assert "testapp_item and testapp_other are still held" in finding.message


def _scans(statement: str) -> int:
    """Sequential scans of a referencing scratch table (3 rows) made by ``statement``."""
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE target (id int PRIMARY KEY)")
        cursor.execute("INSERT INTO target SELECT g FROM generate_series(1, 3) g")
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
        ("ALTER TABLE scratch ADD FOREIGN KEY (n) REFERENCES target", 1),
        ("ALTER TABLE scratch ADD FOREIGN KEY (n) REFERENCES target NOT VALID", 0),
        ("ALTER TABLE scratch ADD COLUMN t int REFERENCES target", 0),
        ("ALTER TABLE scratch ADD COLUMN t int DEFAULT 1 REFERENCES target", 1),
    ],
)
def test_postgresql_checks_existing_rows_unless_not_valid_or_all_null(statement, scans):
    assert _scans(statement) == scans
