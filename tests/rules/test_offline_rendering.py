"""Offline (``--offline``, or no database), SQL that names existing constraints renders too.

Django asks the live schema for the name of a constraint it is about to drop (a unique
constraint, the foreign keys of a primary key whose type changes); offline the analysis
answers with the name Django gives such a constraint, so those operations are judged from
their SQL instead of being left unjudged.
"""

from __future__ import annotations

import pytest
from django.db import migrations, models

from tests.rules.judge import judge_report

ITEM = migrations.CreateModel(
    "Item",
    [
        ("id", models.BigAutoField(primary_key=True)),
        ("code", models.CharField(max_length=20, unique=True)),
        ("qty", models.IntegerField(null=True)),
    ],
)
ORDER = migrations.CreateModel(
    "Order",
    [
        ("id", models.BigAutoField(primary_key=True)),
        ("item", models.ForeignKey("testapp.item", on_delete=models.CASCADE, null=True)),
    ],
)

CASES = {
    "unique dropped": (
        migrations.AlterField("item", "code", models.CharField(max_length=20)),
        {"SM102", "SM209"},
        'ALTER TABLE "testapp_item" DROP CONSTRAINT',
    ),
    "primary key type changed under a foreign key": (
        migrations.AlterField("item", "id", models.AutoField(primary_key=True)),
        {"SM105", "SM107", "SM206"},
        'ALTER TABLE "testapp_order" ALTER COLUMN "item_id" TYPE integer',
    ),
    # Django drops the foreign key and validates it again when the column changes.
    "foreign key made NOT NULL": (
        migrations.AlterField(
            "order", "item", models.ForeignKey("testapp.item", on_delete=models.CASCADE)
        ),
        {"SM105", "SM106", "SM205"},
        'ALTER TABLE "testapp_order" DROP CONSTRAINT',
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_offline_renders_and_judges_what_needs_constraint_names(case):
    operation, codes, statement = CASES[case]
    report = judge_report([operation], setup=[ITEM, ORDER], offline=True)
    assert not [op.render_error for op in report.operations if op.render_error]
    assert {f.code for f in report.findings} == codes
    sql = [s.sql for op in report.operations for s in op.statements]
    assert any(s.startswith(statement) for s in sql), sql
    assert report.risk.value != "safe"
