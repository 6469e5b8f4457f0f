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
        ("legacy", models.CharField(max_length=20, null=True, db_column="old_legacy")),
        ("tags", models.ManyToManyField("testapp.Tag")),
    ],
)
SETUP = [TAG, ITEM]
ENGINES = pytest.mark.parametrize("engine", [None, ZERO_DOWNTIME])


@ENGINES
def test_flags_rename_field(engine):
    findings = judge([migrations.RenameField("item", "name", "title")], setup=SETUP, engine=engine)
    finding = flags("SM203", findings)
    assert finding.severity.value == "destructive"
    assert finding.table == "testapp_item"
    assert finding.lock.value == "ACCESS EXCLUSIVE"
    assert finding.rewrites_table is False
    assert finding.blocking
    assert "name" in finding.message
    assert "title" in finding.message
    assert 'db_column="name"' in finding.hint


@ENGINES
def test_flags_alter_field_that_changes_the_column_name(engine):
    field = models.CharField(max_length=20, db_column="label")
    findings = judge([migrations.AlterField("item", "name", field)], setup=SETUP, engine=engine)
    assert "name TO label" in flags("SM203", findings).message


def test_flags_handwritten_rename_column():
    sql = migrations.RunSQL('ALTER TABLE "testapp_item" RENAME COLUMN "name" TO "title"')
    assert flags("SM203", judge([sql], setup=SETUP)).table == "testapp_item"


def test_flags_the_database_side_of_separate_database_and_state():
    op = migrations.SeparateDatabaseAndState(
        database_operations=[migrations.RenameField("item", "name", "title")]
    )
    flags("SM203", judge([op], setup=SETUP))


@ENGINES
def test_flags_the_through_table_column_a_rename_model_renames(engine):
    findings = judge([migrations.RenameModel("Item", "Thing")], setup=SETUP, engine=engine)
    finding = flags("SM203", findings)
    assert finding.table == "testapp_thing_tags"
    assert "item_id TO thing_id" in finding.message


@ENGINES
def test_leaves_rename_of_a_field_with_db_column_alone(engine):
    op = migrations.RenameField("item", "legacy", "previous")
    leaves_alone("SM203", judge([op], setup=SETUP, engine=engine))


@ENGINES
def test_leaves_what_makemigrations_writes_for_a_pinned_column_alone(engine):
    # Renaming a field and setting db_column to its old column in the same change.
    ops = [
        migrations.AlterField("item", "name", models.CharField(max_length=20, db_column="name")),
        migrations.RenameField("item", "name", "title"),
    ]
    leaves_alone("SM203", judge(ops, setup=SETUP, engine=engine))


@ENGINES
def test_leaves_state_only_rename_alone(engine):
    op = migrations.SeparateDatabaseAndState(
        state_operations=[
            migrations.RenameField("item", "name", "title"),
            migrations.AlterField(
                "item", "title", models.CharField(max_length=20, db_column="name")
            ),
        ]
    )
    leaves_alone("SM203", judge([op], setup=SETUP, engine=engine))


@pytest.mark.parametrize(
    "sql",
    [
        "ALTER TABLE testapp_item RENAME TO testapp_thing",
        "ALTER TABLE testapp_item RENAME CONSTRAINT c TO d",
        "ALTER INDEX testapp_item_name RENAME TO testapp_item_title",
        "ALTER TYPE mood RENAME ATTRIBUTE happy TO glad",
    ],
)
def test_leaves_other_renames_alone(sql):
    leaves_alone("SM203", judge([migrations.RunSQL(sql)], setup=SETUP))


def test_renaming_a_column_of_a_table_created_in_the_same_migration_does_not_block():
    findings = judge([TAG, ITEM, migrations.RenameField("item", "name", "title")])
    assert not flags("SM203", findings).blocking


def test_judged_from_the_operation_when_the_backend_refuses_it(settings):
    # django-pg-zero-downtime-migrations raises instead of renaming when told to.
    settings.ZERO_DOWNTIME_MIGRATIONS_RAISE_FOR_UNSAFE = True
    findings = judge(
        [migrations.RenameField("item", "name", "title")], setup=SETUP, engine=ZERO_DOWNTIME
    )
    finding = flags("SM203", findings)
    assert finding.sql is None
    assert finding.table == "testapp_item"
    assert "name TO title" in finding.message


def test_fallback_leaves_a_pinned_column_alone(settings):
    settings.ZERO_DOWNTIME_MIGRATIONS_RAISE_FOR_UNSAFE = True
    op = migrations.SeparateDatabaseAndState(
        database_operations=[
            migrations.RenameField("item", "legacy", "previous"),
            migrations.RenameField("item", "name", "title"),
        ]
    )
    findings = [f for f in judge([op], setup=SETUP, engine=ZERO_DOWNTIME) if f.code == "SM203"]
    assert [f.message.split(":")[0] for f in findings] == [
        "RENAME COLUMN name TO title on testapp_item"
    ]
