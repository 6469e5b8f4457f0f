from __future__ import annotations

import pytest
from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models

from tests.rules.judge import ZERO_DOWNTIME, flags, judge, leaves_alone

ITEM = migrations.CreateModel(
    "Item",
    [("id", models.BigAutoField(primary_key=True)), ("name", models.CharField(max_length=20))],
)
INDEX = models.Index(fields=["name"], name="item_name_idx")


def test_flags_add_index_on_an_existing_table():
    finding = flags("SM101", judge([migrations.AddIndex("item", INDEX)], setup=[ITEM]))
    assert finding.table == "testapp_item"
    assert finding.lock.value == "SHARE"
    assert finding.blocking
    assert finding.sql.startswith("CREATE INDEX")
    assert "AddIndexConcurrently" in finding.hint


def test_flags_db_index_added_to_a_field():
    field = models.CharField(max_length=20, db_index=True)
    flags("SM101", judge([migrations.AlterField("item", "name", field)], setup=[ITEM]))


def test_flags_the_index_behind_a_new_foreign_key():
    other = migrations.CreateModel("Other", [("id", models.BigAutoField(primary_key=True))])
    fk = models.ForeignKey("testapp.Other", models.CASCADE, null=True)
    findings = judge([migrations.AddField("item", "other", fk)], setup=[ITEM, other])
    assert flags("SM101", findings).table == "testapp_item"


def test_index_on_a_table_created_in_the_same_migration_does_not_block():
    findings = judge([ITEM, migrations.AddIndex("item", INDEX)])
    assert not flags("SM101", findings).blocking


def test_index_on_a_small_table_does_not_block():
    findings = judge(
        [migrations.AddIndex("item", INDEX)], setup=[ITEM], tables={"testapp_item": 10}
    )
    assert not flags("SM101", findings).blocking


def test_leaves_concurrent_index_alone():
    findings = judge([AddIndexConcurrently("item", INDEX)], setup=[ITEM], atomic=False)
    leaves_alone("SM101", findings)


def test_leaves_runsql_concurrent_index_alone():
    sql = migrations.RunSQL("CREATE INDEX CONCURRENTLY i ON testapp_item (name)")
    leaves_alone("SM101", judge([sql], setup=[ITEM], atomic=False))


def test_flags_handwritten_index():
    sql = migrations.RunSQL("create index i on testapp_item (name)")
    assert flags("SM101", judge([sql], setup=[ITEM])).table == "testapp_item"


@pytest.mark.parametrize("engine", [None, ZERO_DOWNTIME])
def test_judged_by_the_sql_each_backend_emits(engine):
    findings = judge([migrations.AddIndex("item", INDEX)], setup=[ITEM], engine=engine)
    if engine == ZERO_DOWNTIME:
        # The zero-downtime backend emits CREATE INDEX CONCURRENTLY itself.
        leaves_alone("SM101", findings)
    else:
        flags("SM101", findings)
