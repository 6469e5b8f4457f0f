from __future__ import annotations

import pytest
from django.db import migrations, models

from tests.rules.judge import ZERO_DOWNTIME, flags, judge, leaves_alone

pytestmark = pytest.mark.filterwarnings(
    "ignore::django_zero_downtime_migrations.backends.postgres.schema.UnsafeOperationWarning"
)

TAG = migrations.CreateModel("Tag", [("id", models.BigAutoField(primary_key=True))])
ITEM = migrations.CreateModel(
    "Item",
    [
        ("id", models.BigAutoField(primary_key=True)),
        ("name", models.CharField(max_length=20)),
        ("tags", models.ManyToManyField("testapp.Tag")),
    ],
)
SETUP = [TAG, ITEM]
ENGINES = pytest.mark.parametrize("engine", [None, ZERO_DOWNTIME])


def tables(findings):
    return sorted(f.table for f in findings if f.code == "SM204")


@ENGINES
def test_flags_rename_model_and_its_through_table(engine):
    findings = judge([migrations.RenameModel("Item", "Thing")], setup=SETUP, engine=engine)
    finding = flags("SM204", findings)
    assert finding.severity.value == "destructive"
    assert finding.lock.value == "ACCESS EXCLUSIVE"
    assert finding.rewrites_table is False
    assert finding.blocking
    assert 'db_table = "testapp_item"' in finding.hint
    assert tables(findings) == ["testapp_item", "testapp_item_tags"]


@ENGINES
def test_flags_alter_model_table(engine):
    findings = judge([migrations.AlterModelTable("item", "shop_item")], setup=SETUP, engine=engine)
    assert "RENAME TO shop_item" in flags("SM204", findings).message


@pytest.mark.parametrize(
    "sql",
    [
        "ALTER TABLE testapp_item RENAME TO shop_item",
        "ALTER TABLE IF EXISTS public.testapp_item RENAME TO shop_item",
        "ALTER TABLE testapp_item SET SCHEMA archive",
    ],
)
def test_flags_handwritten_renames(sql):
    assert tables(judge([migrations.RunSQL(sql)], setup=SETUP)) == ["testapp_item"]


def test_flags_the_database_side_of_separate_database_and_state():
    op = migrations.SeparateDatabaseAndState(
        database_operations=[migrations.RunSQL("ALTER TABLE testapp_item RENAME TO shop_item")],
        state_operations=[migrations.AlterModelTable("item", "shop_item")],
    )
    flags("SM204", judge([op], setup=SETUP))


@ENGINES
def test_leaves_rename_model_with_a_pinned_db_table_alone(engine):
    ops = [
        migrations.AlterModelTable("item", "testapp_item"),
        migrations.RenameModel("Item", "Thing"),
    ]
    leaves_alone("SM204", judge(ops, setup=SETUP, engine=engine))


@ENGINES
def test_leaves_state_only_rename_alone(engine):
    op = migrations.SeparateDatabaseAndState(
        state_operations=[
            migrations.RenameModel("Item", "Thing"),
            migrations.AlterModelTable("thing", "testapp_item"),
        ]
    )
    leaves_alone("SM204", judge([op], setup=SETUP, engine=engine))


@pytest.mark.parametrize(
    "sql",
    [
        "ALTER INDEX testapp_item_name RENAME TO testapp_item_title",
        "ALTER SEQUENCE testapp_seq RENAME TO testapp_sequence",
        "ALTER VIEW testapp_view RENAME TO testapp_view2",
        "ALTER TABLE testapp_item RENAME COLUMN name TO title",
        "ALTER SEQUENCE testapp_seq SET SCHEMA archive",
    ],
)
def test_leaves_other_renames_alone(sql):
    leaves_alone("SM204", judge([migrations.RunSQL(sql)], setup=SETUP))


def test_renaming_a_table_created_in_the_same_migration_does_not_block():
    findings = judge([TAG, ITEM, migrations.AlterModelTable("item", "shop_item")])
    assert not flags("SM204", findings).blocking


@pytest.mark.parametrize(
    "operation",
    [migrations.RenameModel("Item", "Thing"), migrations.AlterModelTable("item", "shop_item")],
    ids=["RenameModel", "AlterModelTable"],
)
def test_judged_from_the_operation_when_the_backend_refuses_it(settings, operation):
    # django-pg-zero-downtime-migrations raises instead of renaming when told to.
    settings.ZERO_DOWNTIME_MIGRATIONS_RAISE_FOR_UNSAFE = True
    finding = flags("SM204", judge([operation], setup=SETUP, engine=ZERO_DOWNTIME))
    assert finding.sql is None
    assert finding.table == "testapp_item"


def test_fallback_leaves_a_pinned_db_table_alone(settings):
    settings.ZERO_DOWNTIME_MIGRATIONS_RAISE_FOR_UNSAFE = True
    op = migrations.SeparateDatabaseAndState(
        database_operations=[
            migrations.AlterModelTable("item", "testapp_item"),
            migrations.RenameModel("Item", "Thing"),
            migrations.AlterModelTable("thing", "shop_item"),
        ]
    )
    findings = [f for f in judge([op], setup=SETUP, engine=ZERO_DOWNTIME) if f.code == "SM204"]
    assert [f.message.split(":")[0] for f in findings] == [
        "ALTER TABLE testapp_item RENAME TO shop_item"
    ]
