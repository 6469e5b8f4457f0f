from __future__ import annotations

import pytest
from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import DatabaseError, connection, migrations, models

from tests.rules.judge import ZERO_DOWNTIME, flags, judge, leaves_alone
from tests.rules.test_sm301_concurrent_statement_in_atomic_migration import APP, run_migration

ENGINES = pytest.mark.parametrize("engine", [None, ZERO_DOWNTIME])

ITEM = migrations.CreateModel(
    "Item",
    [("id", models.BigAutoField(primary_key=True)), ("name", models.CharField(max_length=20))],
)
INDEX = models.Index(fields=["name"], name="item_name_idx")
ADD_SKU = migrations.AddField("item", "sku", models.CharField(max_length=10, null=True))
CONCURRENT = AddIndexConcurrently("item", INDEX)
CONCURRENT_SQL = "CREATE INDEX CONCURRENTLY item_sku_idx ON testapp_item (sku)"


def forwards(apps, schema_editor):
    """A data migration."""


@ENGINES
def test_flags_a_concurrent_index_after_an_ordinary_change(engine):
    findings = judge([ADD_SKU, CONCURRENT], setup=[ITEM], atomic=False, engine=engine)
    finding = flags("SM302", findings)
    assert finding.severity.value == "risky"
    assert finding.operation_index == 1
    assert finding.operation == "AddIndexConcurrently"
    assert finding.lock is None
    assert "(operation 1) with ordinary changes (operation 0)" in finding.message
    assert "atomic = False" in finding.hint
    assert "safemigrate" in finding.hint


@ENGINES
def test_flags_an_ordinary_change_after_a_concurrent_index(engine):
    findings = judge([CONCURRENT, ADD_SKU], setup=[ITEM], atomic=False, engine=engine)
    finding = flags("SM302", findings)
    assert finding.operation_index == 1
    assert finding.operation == "AddField"
    assert "(operation 0) with ordinary changes (operation 1)" in finding.message


def test_reports_once_on_the_first_operation_where_it_mixes():
    operations = [
        ADD_SKU,
        migrations.RunSQL("UPDATE testapp_item SET sku = name"),
        migrations.RunSQL(CONCURRENT_SQL),
        migrations.RunSQL("VACUUM testapp_item"),
    ]
    findings = [f for f in judge(operations, setup=[ITEM], atomic=False) if f.code == "SM302"]
    assert len(findings) == 1
    assert findings[0].operation_index == 2
    assert findings[0].table == "testapp_item"
    assert findings[0].message.count("CREATE INDEX CONCURRENTLY") == 1


def test_flags_mixing_inside_one_runsql():
    sql = migrations.RunSQL(f"{CONCURRENT_SQL}; UPDATE testapp_item SET name = 'x'")
    finding = flags("SM302", judge([ADD_SKU, sql], setup=[ITEM], atomic=False))
    assert finding.operation_index == 1


def test_flags_mixing_inside_one_runsql_on_its_own():
    sql = migrations.RunSQL(
        ["CREATE INDEX CONCURRENTLY i ON testapp_item (name)", "UPDATE testapp_item SET name = ''"]
    )
    finding = flags("SM302", judge([sql], setup=[ITEM], atomic=False))
    assert "in one RunSQL" in finding.message


def test_flags_a_data_migration_next_to_a_concurrent_index():
    findings = judge([migrations.RunPython(forwards), CONCURRENT], setup=[ITEM], atomic=False)
    assert flags("SM302", findings).operation_index == 1


@ENGINES
def test_leaves_a_lone_concurrent_operation_alone(engine):
    leaves_alone("SM302", judge([CONCURRENT], setup=[ITEM], atomic=False, engine=engine))


@ENGINES
def test_leaves_several_concurrent_statements_alone(engine):
    operations = [CONCURRENT, migrations.RunSQL(CONCURRENT_SQL.replace("sku", "name"))]
    leaves_alone("SM302", judge(operations, setup=[ITEM], atomic=False, engine=engine))


def test_leaves_session_settings_and_noop_data_migrations_alone():
    operations = [
        migrations.RunSQL("SET lock_timeout = '2s'"),
        migrations.RunPython(migrations.RunPython.noop, migrations.RunPython.noop),
        CONCURRENT,
    ]
    leaves_alone("SM302", judge(operations, setup=[ITEM], atomic=False))


@ENGINES
def test_leaves_a_non_atomic_migration_without_concurrent_statements_alone(engine):
    operations = [ADD_SKU, migrations.AddIndex("item", INDEX)]
    findings = judge(operations, setup=[ITEM], atomic=False, engine=engine)
    if engine == ZERO_DOWNTIME:
        # The zero-downtime backend builds the index CONCURRENTLY: that is mixing.
        assert flags("SM302", findings).operation_index == 1
    else:
        leaves_alone("SM302", findings)


@ENGINES
def test_an_atomic_migration_mixes_only_where_the_backend_drops_the_transaction(engine):
    # Django's backend wraps the migration in a transaction: the concurrent statement
    # fails there (SM301) and nothing is half-applied. The zero-downtime backend runs
    # every migration without one.
    findings = judge([ADD_SKU, migrations.RunSQL(CONCURRENT_SQL)], setup=[ITEM], engine=engine)
    if engine == ZERO_DOWNTIME:
        flags("SM302", findings)
    else:
        leaves_alone("SM302", findings)
        flags("SM301", findings)


@pytest.mark.parametrize(("pg_version", "fires"), [(11, True), (12, False), (15, False)])
def test_alter_type_add_value_is_non_transactional_only_before_postgresql_12(pg_version, fires):
    operations = [
        migrations.RunSQL("CREATE TABLE t (id int)"),
        migrations.RunSQL("ALTER TYPE mood ADD VALUE 'happy'"),
    ]
    findings = judge(operations, atomic=False, pg_version=pg_version)
    assert any(f.code == "SM302" for f in findings) is fires


# What really happens.


@pytest.fixture
def run_tables():
    yield
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {APP}_item CASCADE")


def columns(table: str) -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = %s", [table]
        )
        return {row[0] for row in cursor.fetchall()}


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("run_tables")
@ENGINES
def test_a_failure_after_an_ordinary_change_leaves_it_applied(engine):
    # The concurrent build fails (two rows break the unique index) after ADD COLUMN ran.
    fill = migrations.RunSQL(f"INSERT INTO {APP}_item (name) VALUES ('a'), ('a')")
    unique = migrations.RunSQL(
        f"CREATE UNIQUE INDEX CONCURRENTLY item_name_uniq ON {APP}_item (name)"
    )
    with pytest.raises(DatabaseError) as excinfo:
        run_migration([ADD_SKU, unique], atomic=False, engine=engine, setup=[ITEM, fill])
    assert getattr(excinfo.value.__cause__, "sqlstate", None) == "23505"  # unique_violation
    assert "sku" in columns(f"{APP}_item")  # half-applied: a rerun fails on ADD COLUMN
