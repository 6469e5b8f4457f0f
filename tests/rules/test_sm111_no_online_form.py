from __future__ import annotations

from django.db import connection, migrations, models
from django.db.migrations.state import ProjectState

from django_safemigrate.enums import Risk
from tests.rules.judge import APP, flags, judge, leaves_alone

ITEM = migrations.CreateModel(
    "Item",
    [
        ("id", models.AutoField(primary_key=True)),
        ("qty", models.IntegerField()),
        ("name", models.CharField(max_length=20)),
    ],
)
#: The primary key to bigint: copying it to a new column would leave the key behind.
BIGGER_KEY = migrations.AlterField("item", "id", models.BigAutoField(primary_key=True))
LIVE = {"testapp_item": 50_000}


def _create_item() -> None:
    """The table on the test database, so that the rewrite reads its catalogs."""
    state = ProjectState()
    after = state.clone()
    ITEM.state_forwards(APP, after)
    with connection.schema_editor() as editor:
        ITEM.database_forwards(APP, editor, state, after)


def test_flags_a_rewriting_change_with_no_online_form_for_review():
    _create_item()
    finding = flags("SM111", judge([BIGGER_KEY], setup=[ITEM], tables=LIVE, online=True))
    assert finding.severity is Risk.DESTRUCTIVE
    assert finding.blocking
    assert finding.table == "testapp_item"
    assert "no online form here" in finding.message
    assert "ALTER TABLE" in finding.message


def test_leaves_alone_without_online_execution():
    _create_item()
    leaves_alone("SM111", judge([BIGGER_KEY], setup=[ITEM], tables=LIVE, online=False))


def test_leaves_alone_a_change_that_keeps_the_rows():
    _create_item()
    longer = migrations.AlterField("item", "name", models.CharField(max_length=40))
    leaves_alone("SM111", judge([longer], setup=[ITEM], tables=LIVE, online=True))


def test_does_not_block_on_a_small_or_new_table():
    _create_item()
    small = flags(
        "SM111", judge([BIGGER_KEY], setup=[ITEM], tables={"testapp_item": 10}, online=True)
    )
    assert not small.blocking
    new = flags("SM111", judge([BIGGER_KEY], setup=[ITEM], tables={}, online=True))
    assert not new.blocking


def test_offline_the_models_tell_the_keys():
    """Without a database the verdict comes from the models: the same as a live one."""
    finding = flags("SM111", judge([BIGGER_KEY], setup=[ITEM], online=True, offline=True))
    assert "primary key" in finding.message
    # An ordinary column has its online form offline too.
    wider = migrations.AlterField("item", "qty", models.BigIntegerField())
    leaves_alone("SM111", judge([wider], setup=[ITEM], online=True, offline=True))
