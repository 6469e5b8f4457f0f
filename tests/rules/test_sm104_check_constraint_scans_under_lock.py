from __future__ import annotations

import pytest
from django.db import OperationalError, connection, connections, migrations, models
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


# -- ALTER DOMAIN ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "what"),
    [
        ("ALTER DOMAIN amount ADD CONSTRAINT amount_positive CHECK (VALUE > 0)", "ADD CONSTRAINT"),
        ("alter domain shop.amount add check (value > 0)", "ADD CHECK"),
        ("ALTER DOMAIN amount SET NOT NULL", "SET NOT NULL"),
        ("ALTER DOMAIN amount VALIDATE CONSTRAINT amount_positive", "VALIDATE CONSTRAINT"),
    ],
)
def test_flags_alter_domain_that_checks_stored_values(sql, what):
    finding = flags("SM104", judge([migrations.RunSQL(sql)], setup=[ITEM]))
    assert what in finding.message
    assert "every column of every table that uses it" in finding.message
    assert finding.lock.value == "SHARE"
    assert finding.rewrites_table is False
    assert finding.table is None
    assert finding.blocking


def test_hint_for_a_domain_check_adds_it_not_valid_or_checks_the_columns():
    sql = "ALTER DOMAIN amount ADD CONSTRAINT amount_positive CHECK (VALUE > 0)"
    hint = flags("SM104", judge([migrations.RunSQL(sql)])).hint
    assert "ALTER DOMAIN amount ADD CONSTRAINT amount_positive CHECK (value > 0) NOT VALID" in hint
    assert "ALTER TABLE <table> VALIDATE CONSTRAINT <name>" in hint
    assert "up to PostgreSQL 18, ALTER DOMAIN ... VALIDATE CONSTRAINT holds the same" in hint


def test_hint_for_a_domain_not_null_checks_the_columns():
    hint = flags("SM104", judge([migrations.RunSQL("ALTER DOMAIN amount SET NOT NULL")])).hint
    assert "no NOT VALID form" in hint
    assert "SM106" in hint


@pytest.mark.parametrize(
    "sql",
    [
        "ALTER DOMAIN amount ADD CONSTRAINT amount_positive CHECK (VALUE > 0) NOT VALID",
        "ALTER DOMAIN amount DROP CONSTRAINT amount_positive",
        "ALTER DOMAIN amount DROP NOT NULL",
        "ALTER DOMAIN amount SET DEFAULT 0",
        "ALTER DOMAIN amount RENAME CONSTRAINT amount_positive TO amount_above_zero",
        "ALTER DOMAIN amount RENAME TO money_amount",
        "ALTER DOMAIN amount OWNER TO CURRENT_USER",
        "ALTER DOMAIN amount SET SCHEMA public",
    ],
)
def test_leaves_domain_changes_that_check_nothing_alone(sql):
    leaves_alone("SM104", judge([migrations.RunSQL(sql)]))


def test_validate_of_a_domain_constraint_after_postgresql_18_is_left_alone():
    sql = migrations.RunSQL("ALTER DOMAIN amount VALIDATE CONSTRAINT amount_positive")
    flags("SM104", judge([sql], pg_version=18))
    leaves_alone("SM104", judge([sql], pg_version=19))


def _create_domain_users():
    """A domain ``amount``, a domain ``price`` over it, and two tables that use them."""
    with connection.cursor() as cursor:
        cursor.execute("CREATE DOMAIN amount AS integer")
        cursor.execute("CREATE DOMAIN price AS amount")
        cursor.execute("CREATE TABLE dom_order (id int, total amount, paid amount)")
        cursor.execute("CREATE TABLE dom_product (id int, price price)")
        cursor.execute("CREATE VIEW dom_totals AS SELECT total FROM dom_order")


def test_names_the_tables_that_use_the_domain():
    _create_domain_users()
    sql = migrations.RunSQL("ALTER DOMAIN amount ADD CHECK (VALUE > 0)")
    large = {"dom_order": 500_000, "dom_product": 10}
    finding = flags("SM104", judge([sql], tables=large))
    # Through the domain over it too; the view stores nothing.
    assert "(dom_order.total, dom_order.paid, dom_product.price) under" in finding.message
    assert "each of those 2 tables" in finding.message
    assert finding.blocking
    small = {"dom_order": 10, "dom_product": 10}
    assert not flags("SM104", judge([sql], tables=small)).blocking


def test_a_domain_of_one_small_table_does_not_block():
    _create_domain_users()
    sql = migrations.RunSQL("ALTER DOMAIN price SET NOT NULL")
    finding = flags("SM104", judge([sql], tables={"dom_product": 10, "dom_order": 500_000}))
    assert "(dom_product.price) under a SHARE lock on the table dom_product" in finding.message
    assert finding.table == "dom_product"
    assert not finding.blocking


def test_a_domain_no_table_uses_does_not_block():
    with connection.cursor() as cursor:
        cursor.execute("CREATE DOMAIN unused AS integer")
    finding = flags("SM104", judge([migrations.RunSQL("ALTER DOMAIN unused SET NOT NULL")]))
    assert "no table uses it" in finding.message
    assert not finding.blocking


@pytest.mark.parametrize(
    ("statement", "blocks_writes"),
    [
        ("ALTER DOMAIN scratch_amount ADD CONSTRAINT scratch_pos CHECK (VALUE > 0)", True),
        ("ALTER DOMAIN scratch_amount SET NOT NULL", True),
        ("ALTER DOMAIN scratch_amount VALIDATE CONSTRAINT scratch_nonneg", True),
        (
            "ALTER DOMAIN scratch_amount ADD CONSTRAINT scratch_pos CHECK (VALUE > 0) NOT VALID",
            False,
        ),
    ],
)
def test_postgresql_alter_domain_holds_share_on_every_table_using_it(statement, blocks_writes):
    """While the ALTER DOMAIN transaction is open, pg_locks shows SHARE on each table that
    uses the domain (through a domain over it too); a reader goes on, a writer waits."""
    first = connections.create_connection("default")
    second = connections.create_connection("default")
    try:
        with first.cursor() as setup:
            setup.execute("CREATE DOMAIN scratch_amount AS integer")
            setup.execute(
                "ALTER DOMAIN scratch_amount "
                "ADD CONSTRAINT scratch_nonneg CHECK (VALUE >= 0) NOT VALID"
            )
            setup.execute("CREATE DOMAIN scratch_price AS scratch_amount")
            setup.execute("CREATE TABLE scratch_order (total scratch_amount)")
            setup.execute("CREATE TABLE scratch_product (price scratch_price)")
            setup.execute("INSERT INTO scratch_order VALUES (1), (2)")
            setup.execute("INSERT INTO scratch_product VALUES (1)")
        try:
            first.set_autocommit(False)
            with first.cursor() as alter, second.cursor() as other:
                alter.execute(statement)
                alter.execute(
                    "SELECT c.relname, l.mode FROM pg_locks l JOIN pg_class c "
                    "ON c.oid = l.relation WHERE l.pid = pg_backend_pid() "
                    "AND c.relname LIKE 'scratch_%' ORDER BY 1"
                )
                locks = alter.fetchall()
                other.execute("SET lock_timeout = '200ms'")
                other.execute("SELECT count(*) FROM scratch_order")
                assert other.fetchone() == (2,)
                if blocks_writes:
                    assert locks == [
                        ("scratch_order", "ShareLock"),
                        ("scratch_product", "ShareLock"),
                    ]
                    with pytest.raises(OperationalError, match="lock timeout"):
                        other.execute("INSERT INTO scratch_product VALUES (3)")
                else:
                    assert locks == []
                    other.execute("INSERT INTO scratch_product VALUES (3)")
            first.rollback()
        finally:
            first.set_autocommit(True)
            with first.cursor() as cleanup:
                cleanup.execute("DROP TABLE scratch_order, scratch_product")
                cleanup.execute("DROP DOMAIN scratch_price, scratch_amount")
    finally:
        first.close()
        second.close()
