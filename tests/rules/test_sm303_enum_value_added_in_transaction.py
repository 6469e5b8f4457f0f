from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, migrations

from tests.rules.judge import ZERO_DOWNTIME, flags, judge, leaves_alone
from tests.rules.test_sm301_concurrent_statement_in_atomic_migration import run_migration

ENGINES = pytest.mark.parametrize("engine", [None, ZERO_DOWNTIME])

ADD = "ALTER TYPE mood ADD VALUE 'happy'"
USE = "UPDATE person SET m = 'happy' WHERE m = 'ok'"


def wraps(engine: str | None) -> bool:
    return engine is None


@ENGINES
@pytest.mark.parametrize("pg_version", [10, 11])
def test_flags_add_value_in_a_transaction_before_postgresql_12(engine, pg_version):
    findings = judge([migrations.RunSQL(ADD)], pg_version=pg_version, engine=engine)
    if not wraps(engine):
        leaves_alone("SM303", findings)
        return
    finding = flags("SM303", findings)
    assert finding.severity.value == "risky"
    assert finding.sql == ADD
    assert finding.lock is None
    assert "before PostgreSQL 12" in finding.message
    assert "atomic = False" in finding.hint


@pytest.mark.parametrize("pg_version", [11, 12, 15])
def test_leaves_add_value_in_a_non_atomic_migration_alone(pg_version):
    operations = [migrations.RunSQL(ADD), migrations.RunSQL(USE)]
    leaves_alone("SM303", judge(operations, atomic=False, pg_version=pg_version))


@pytest.mark.parametrize("pg_version", [12, 15, 17])
def test_leaves_add_value_alone_from_postgresql_12_when_nothing_uses_it(pg_version):
    operations = [
        migrations.RunSQL(ADD),
        migrations.RunSQL("UPDATE person SET m = 'ok' WHERE happy"),  # a column, not the label
        migrations.RunSQL("SELECT 'sad'::mood"),
    ]
    leaves_alone("SM303", judge(operations, pg_version=pg_version))


@ENGINES
@pytest.mark.parametrize("pg_version", [12, 15])
def test_flags_a_later_use_of_the_new_value_in_the_same_transaction(engine, pg_version):
    operations = [migrations.RunSQL(ADD), migrations.RunSQL(USE)]
    findings = judge(operations, pg_version=pg_version, engine=engine)
    if not wraps(engine):
        leaves_alone("SM303", findings)  # each statement commits on its own
        return
    finding = flags("SM303", findings)
    assert finding.operation_index == 0
    assert finding.sql == ADD
    assert "'happy' is added to mood and used in the same transaction" in finding.message
    assert "UPDATE person SET m = 'happy'" in finding.message
    assert "migration of its own" in finding.hint


def test_flags_a_use_in_the_same_runsql_string():
    sql = migrations.RunSQL(f"{ADD}; INSERT INTO person VALUES (1, 'happy'::mood)")
    flags("SM303", judge([sql]))


@ENGINES
def test_flags_a_use_in_the_same_query_string_even_without_atomic(engine):
    sql = migrations.RunSQL([f"{ADD}; {USE}"])
    finding = flags("SM303", judge([sql], atomic=False, engine=engine))
    assert "UPDATE person" in finding.message


def test_leaves_a_use_before_the_value_is_added_alone():
    operations = [migrations.RunSQL(USE), migrations.RunSQL(ADD)]
    leaves_alone("SM303", judge(operations))


def test_leaves_rename_value_alone():
    operations = [
        migrations.RunSQL("ALTER TYPE mood RENAME VALUE 'ok' TO 'happy'"),
        migrations.RunSQL(USE),
    ]
    leaves_alone("SM303", judge(operations, pg_version=11))


def test_schema_qualified_type():
    operations = [
        migrations.RunSQL("ALTER TYPE public.mood ADD VALUE IF NOT EXISTS 'happy' AFTER 'ok'"),
        migrations.RunSQL("ALTER TABLE person ALTER COLUMN m SET DEFAULT 'happy'"),
    ]
    assert "public.mood" in flags("SM303", judge(operations)).message


# What really happens.


@pytest.fixture
def enum_type():
    with connection.cursor() as cursor:
        cursor.execute("CREATE TYPE sm303_mood AS ENUM ('sad', 'ok')")
        cursor.execute("CREATE TABLE sm303_person (id int, m sm303_mood)")
    yield
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE sm303_person")
        cursor.execute("DROP TYPE sm303_mood")


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("enum_type")
@ENGINES
def test_using_the_new_value_in_an_atomic_migration(engine):
    operations = [
        migrations.RunSQL("ALTER TYPE sm303_mood ADD VALUE 'happy'"),
        migrations.RunSQL("INSERT INTO sm303_person VALUES (1, 'happy')"),
    ]
    if wraps(engine):
        with pytest.raises(DatabaseError) as excinfo:
            run_migration(operations, atomic=True, engine=engine)
        assert getattr(excinfo.value.__cause__, "sqlstate", None) == "55P04"  # unsafe use
    else:
        run_migration(operations, atomic=True, engine=engine)
