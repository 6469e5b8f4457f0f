from __future__ import annotations

import pytest
from django.db import migrations, models

from tests.rules.judge import ZERO_DOWNTIME, flags, judge, leaves_alone

ITEM = migrations.CreateModel("Item", [("id", models.BigAutoField(primary_key=True))])
ENGINES = pytest.mark.parametrize("engine", [None, ZERO_DOWNTIME])


def forwards(apps, schema_editor):
    """Does nothing."""


def test_flags_run_python_without_reverse_code():
    finding = flags("SM402", judge([migrations.RunPython(forwards)]))
    assert finding.severity.value == "safe"
    assert finding.message.startswith("RunPython has no reverse_code")
    assert "migrations.RunPython.noop" in finding.hint


@ENGINES
def test_flags_run_sql_without_reverse_sql(engine):
    finding = flags("SM402", judge([migrations.RunSQL("SELECT 1")], engine=engine))
    assert finding.severity.value == "safe"
    assert finding.message.startswith("RunSQL has no reverse_sql")
    assert "migrations.RunSQL.noop" in finding.hint


def test_flags_each_irreversible_operation_on_the_database_side():
    op = migrations.SeparateDatabaseAndState(
        database_operations=[
            migrations.RunSQL("SELECT 1"),
            migrations.RunSQL("SELECT 2", "SELECT 3"),
            migrations.RunPython(forwards),
        ],
        state_operations=[migrations.RunSQL("SELECT 4")],
    )
    findings = [f for f in judge([op]) if f.code == "SM402"]
    assert [f.message.split(" ")[0] for f in findings] == ["RunSQL", "RunPython"]


@ENGINES
@pytest.mark.parametrize(
    "operation",
    [
        migrations.RunPython(forwards, forwards),
        migrations.RunPython(forwards, migrations.RunPython.noop),
        migrations.RunSQL("SELECT 1", "SELECT 2"),
        migrations.RunSQL("SELECT 1", migrations.RunSQL.noop),
        migrations.RunSQL(["SELECT 1"], [("SELECT %s", [2])]),
        migrations.AddField("item", "note", models.TextField(null=True)),
        migrations.SeparateDatabaseAndState(state_operations=[migrations.RunSQL("SELECT 1")]),
    ],
    ids=[
        "python_reverse",
        "python_noop",
        "sql_reverse",
        "sql_noop",
        "sql_list_reverse",
        "schema_operation",
        "state_only",
    ],
)
def test_leaves_reversible_operations_alone(engine, operation):
    leaves_alone("SM402", judge([operation], setup=[ITEM], engine=engine))
