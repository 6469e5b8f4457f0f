from __future__ import annotations

from django.db import migrations, models

from tests.rules.judge import codes, flags, judge, leaves_alone

ITEM = migrations.CreateModel("Item", [("id", models.BigAutoField(primary_key=True))])


def backfill(apps, schema_editor):
    """Does nothing; the analysis never runs it (except on a SeparateDatabaseAndState's
    database side, which the renderer executes)."""


def test_flags_run_python():
    finding = flags("SM401", judge([migrations.RunPython(backfill)], setup=[ITEM]))
    assert finding.severity.value == "risky"
    assert finding.operation == "RunPython"
    assert finding.sql is None
    assert finding.message == (
        "RunPython(backfill) runs arbitrary Python inside a transaction: every row it writes "
        "stays locked, and every lock taken before it in that transaction stays held, until "
        "it commits."
    )
    assert "idempotent" in finding.hint
    assert "safemigrate_acknowledge = {'SM401'" in finding.hint


def test_says_when_it_runs_outside_a_transaction():
    finding = flags("SM401", judge([migrations.RunPython(backfill)], atomic=False))
    assert "outside a transaction" in finding.message


def test_an_atomic_operation_of_a_non_atomic_migration_runs_in_a_transaction():
    finding = flags("SM401", judge([migrations.RunPython(backfill, atomic=True)], atomic=False))
    assert "inside a transaction" in finding.message


def test_flags_run_python_with_a_reverse_and_elidable():
    op = migrations.RunPython(backfill, migrations.RunPython.noop, elidable=True)
    flags("SM401", judge([op]))


def test_flags_the_database_side_of_separate_database_and_state():
    op = migrations.SeparateDatabaseAndState(database_operations=[migrations.RunPython(backfill)])
    assert "RunPython(backfill)" in flags("SM401", judge([op])).message


def test_an_acknowledgement_is_shown_and_lowers_the_migration_risk():
    findings = judge(
        [migrations.RunPython(backfill)],
        attrs={"safemigrate_acknowledge": {"SM401": "idempotent, 200 rows"}},
    )
    assert flags("SM401", findings).acknowledged == "idempotent, 200 rows"


def test_leaves_noop_alone():
    op = migrations.RunPython(migrations.RunPython.noop, migrations.RunPython.noop)
    leaves_alone("SM401", judge([op]))


def test_leaves_the_state_side_of_separate_database_and_state_alone():
    op = migrations.SeparateDatabaseAndState(state_operations=[migrations.RunPython(backfill)])
    leaves_alone("SM401", judge([op]))


def test_leaves_schema_operations_and_run_sql_alone():
    ops = [
        migrations.AddField("item", "note", models.TextField(null=True)),
        migrations.RunSQL("SELECT 1", migrations.RunSQL.noop),
    ]
    assert "SM401" not in codes(judge(ops, setup=[ITEM]))
