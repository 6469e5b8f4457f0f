from __future__ import annotations

from django.db import migrations, models

from tests.rules.judge import flags, judge, leaves_alone

ITEM = migrations.CreateModel(
    "Item",
    [
        ("id", models.BigAutoField(primary_key=True)),
        ("name", models.CharField(max_length=20)),
        ("legacy", models.CharField(max_length=20, null=True)),
    ],
)


def test_flags_remove_field():
    finding = flags("SM201", judge([migrations.RemoveField("item", "legacy")], setup=[ITEM]))
    assert finding.severity.value == "destructive"
    assert finding.table == "testapp_item"
    assert "legacy" in finding.message


def test_flags_handwritten_drop_column():
    sql = migrations.RunSQL("ALTER TABLE testapp_item DROP COLUMN legacy")
    flags("SM201", judge([sql], setup=[ITEM]))


def test_leaves_state_only_removal_alone():
    op = migrations.SeparateDatabaseAndState(
        state_operations=[migrations.RemoveField("item", "legacy")]
    )
    leaves_alone("SM201", judge([op], setup=[ITEM]))


def test_leaves_add_column_alone():
    op = migrations.AddField("item", "sku", models.CharField(max_length=10, null=True))
    leaves_alone("SM201", judge([op], setup=[ITEM]))


def test_drop_from_a_table_the_deploy_creates_does_not_block():
    # Live database without the table: an earlier migration of this deploy creates it.
    op = migrations.RemoveField("item", "legacy")
    finding = flags("SM201", judge([op], setup=[ITEM], tables={}))
    assert not finding.blocking
    on_live_table = flags("SM201", judge([op], setup=[ITEM], tables={"testapp_item": 5}))
    assert on_live_table.blocking
