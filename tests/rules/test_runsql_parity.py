"""One rule per fact, whatever wrote the SQL.

For each rule that judges what an operation renders: the operation, and the very statements
the backend renders for it written by hand in ``RunSQL`` (with the operation as its state
side), get the same findings: same codes, same hints, same tables and locks.
"""

from __future__ import annotations

import pytest
from django.db import migrations, models

from tests.rules.judge import judge, judge_report

ITEM = migrations.CreateModel(
    "Item",
    [
        ("id", models.BigAutoField(primary_key=True)),
        ("name", models.CharField(max_length=40)),
        ("note", models.CharField(max_length=20, null=True)),
        ("qty", models.IntegerField(default=0)),
        ("code", models.CharField(max_length=20, unique=True)),
    ],
)
OTHER = migrations.CreateModel("Other", [("id", models.BigAutoField(primary_key=True))])
SETUP = [OTHER, ITEM]
LARGE = {"testapp_item": 500_000, "testapp_other": 500_000}

CASES = {
    "SM101": migrations.AddIndex("item", models.Index(fields=["name"], name="item_name_idx")),
    "SM102": migrations.AlterField("item", "code", models.CharField(max_length=20)),
    "SM103": migrations.AddConstraint(
        "item", models.UniqueConstraint(fields=["name"], name="item_name_uniq")
    ),
    "SM104": migrations.AddConstraint(
        "item", models.CheckConstraint(condition=models.Q(qty__gte=0), name="item_qty_pos")
    ),
    "SM105": migrations.AddField(
        "item", "other", models.ForeignKey("testapp.Other", models.CASCADE, default=1)
    ),
    "SM106": migrations.AlterField("item", "note", models.CharField(max_length=20, default="")),
    "SM107": migrations.AlterField("item", "qty", models.BigIntegerField(default=0)),
    "SM108": migrations.AddField(
        "item", "token", models.UUIDField(db_default=models.Func(function="gen_random_uuid"))
    ),
    "SM201": migrations.RemoveField("item", "note"),
    "SM202": migrations.DeleteModel("Other"),
    "SM203": migrations.RenameField("item", "note", "remark"),
    "SM204": migrations.AlterModelTable("item", "warehouse_item"),
    "SM205": migrations.AddField("item", "sku", models.IntegerField(default=0)),
    "SM206": migrations.AlterField("item", "name", models.CharField(max_length=10)),
    "SM207": migrations.AlterField("item", "note", models.CharField(max_length=20, default="")),
    "SM209": migrations.AlterField("item", "code", models.CharField(max_length=20)),
}


def by_hand(operation):
    """``operation``'s statements, as the backend renders them, written in RunSQL."""
    report = judge_report([operation], setup=SETUP)
    statements = [s.sql for op in report.operations for s in op.statements]
    assert statements, f"{operation} renders no SQL"
    return migrations.RunSQL(statements, "SELECT 1", state_operations=[operation])


def facts(findings, codes):
    return sorted(
        (f.code, f.hint, f.table, f.lock, f.severity) for f in findings if f.code in codes
    )


@pytest.mark.parametrize("code", sorted(CASES))
def test_runsql_gets_the_findings_of_the_operation_it_does_by_hand(code):
    operation = CASES[code]
    rendered = judge([operation], setup=SETUP, tables=LARGE)
    assert code in {f.code for f in rendered}, [f.code for f in rendered]
    written = judge([by_hand(operation)], setup=SETUP, tables=LARGE)
    # Rules about operations only (data migrations, irreversibility) aside.
    judged = {f.code for f in rendered + written} - {"SM401", "SM402", "SM404"}
    assert facts(written, judged) == facts(rendered, judged)
