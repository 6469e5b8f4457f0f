from __future__ import annotations

import pytest
from django.db import migrations, models
from django.db.models.functions import Lower

from tests.rules.judge import ZERO_DOWNTIME, flags, judge, leaves_alone

pytestmark = pytest.mark.filterwarnings(
    "ignore::django_zero_downtime_migrations.backends.postgres.schema.UnsafeOperationWarning"
)

OTHER = migrations.CreateModel("Other", [("id", models.BigAutoField(primary_key=True))])
ITEM = migrations.CreateModel(
    "Item",
    [
        ("id", models.BigAutoField(primary_key=True)),
        ("name", models.CharField(max_length=20)),
        ("note", models.CharField(max_length=20, null=True)),
        ("code", models.CharField(max_length=20, null=True, db_default="x")),
    ],
)
SETUP = [OTHER, ITEM]
ENGINES = pytest.mark.parametrize("engine", [None, ZERO_DOWNTIME])
# django-pg-zero-downtime-migrations queues SET NOT NULL and foreign keys as deferred
# statement objects that only its own execute() can render; both backends are judged.
ENGINES_WITH_DEFERRED_SQL = pytest.mark.parametrize("engine", [None, ZERO_DOWNTIME])


def add(name, field):
    return migrations.AddField("item", name, field)


@ENGINES
def test_flags_not_null_field_added_with_a_python_default(engine):
    op = add("sku", models.CharField(max_length=10, default="none"))
    finding = flags("SM205", judge([op], setup=SETUP, engine=engine))
    assert finding.severity.value == "risky"
    assert finding.table == "testapp_item"
    assert finding.lock is None
    assert finding.blocking
    assert "sku" in finding.message
    assert "models.CharField(..., db_default=" in finding.hint


def test_a_small_table_still_blocks():
    # The old code's INSERTs fail however few rows the table has.
    op = add("sku", models.CharField(max_length=10, default="none"))
    findings = judge([op], setup=SETUP, tables={"testapp_item": 5, "testapp_other": 5})
    assert flags("SM205", findings).blocking


@ENGINES_WITH_DEFERRED_SQL
def test_flags_not_null_foreign_key(engine):
    op = add("other", models.ForeignKey("testapp.Other", models.CASCADE, default=1))
    flags("SM205", judge([op], setup=SETUP, engine=engine))


def test_flags_the_database_side_of_separate_database_and_state():
    op = migrations.SeparateDatabaseAndState(
        database_operations=[add("sku", models.CharField(max_length=10, default="none"))]
    )
    flags("SM205", judge([op], setup=SETUP))


def test_flags_even_when_the_backend_refuses_to_render_it(settings):
    settings.ZERO_DOWNTIME_MIGRATIONS_RAISE_FOR_UNSAFE = True
    op = add("sku", models.CharField(max_length=10, default="none"))
    finding = flags("SM205", judge([op], setup=SETUP, engine=ZERO_DOWNTIME))
    assert finding.table == "testapp_item"


@ENGINES
@pytest.mark.parametrize(
    "field",
    [
        models.CharField(max_length=10, null=True),
        models.CharField(max_length=10, db_default="none"),
        models.CharField(max_length=10, default="none", db_default="none"),
        models.IntegerField(db_default=0),
        models.GeneratedField(
            expression=Lower("name"), output_field=models.CharField(max_length=20), db_persist=True
        ),
    ],
    ids=["nullable", "db_default", "both_defaults", "int_db_default", "generated"],
)
def test_leaves_columns_old_code_can_insert_without_alone(engine, field):
    leaves_alone("SM205", judge([add("extra", field)], setup=SETUP, engine=engine))


@ENGINES_WITH_DEFERRED_SQL
def test_leaves_many_to_many_alone(engine):
    op = add("others", models.ManyToManyField("testapp.Other"))
    leaves_alone("SM205", judge([op], setup=SETUP, engine=engine))


@ENGINES
def test_leaves_a_field_of_a_table_created_in_the_same_migration_alone(engine):
    op = add("sku", models.CharField(max_length=10, default="none"))
    leaves_alone("SM205", judge([OTHER, ITEM, op], engine=engine))


def test_leaves_a_model_created_on_the_same_database_side_alone():
    op = migrations.SeparateDatabaseAndState(
        database_operations=[ITEM, add("sku", models.CharField(max_length=10, default="none"))]
    )
    leaves_alone("SM205", judge([op], setup=[OTHER]))


@ENGINES
def test_leaves_state_only_add_field_alone(engine):
    op = migrations.SeparateDatabaseAndState(
        state_operations=[add("sku", models.CharField(max_length=10, default="none"))]
    )
    leaves_alone("SM205", judge([op], setup=SETUP, engine=engine))


@ENGINES_WITH_DEFERRED_SQL
def test_flags_alter_field_that_makes_a_nullable_column_not_null(engine):
    op = migrations.AlterField("item", "note", models.CharField(max_length=20, default=""))
    finding = flags("SM205", judge([op], setup=SETUP, engine=engine))
    assert finding.table == "testapp_item"
    assert "note" in finding.message
    assert "post-deploy" in finding.hint


@ENGINES_WITH_DEFERRED_SQL
def test_a_db_default_only_on_the_new_field_does_not_help_the_old_code(engine):
    # The old model has null=True and no db_default: it sends NULL, not DEFAULT.
    op = migrations.AlterField("item", "note", models.CharField(max_length=20, db_default=""))
    flags("SM205", judge([op], setup=SETUP, engine=engine))


@ENGINES_WITH_DEFERRED_SQL
def test_leaves_not_null_alone_when_old_and_new_field_have_a_db_default(engine):
    op = migrations.AlterField("item", "code", models.CharField(max_length=20, db_default="x"))
    leaves_alone("SM205", judge([op], setup=SETUP, engine=engine))


@ENGINES
@pytest.mark.parametrize(
    ("name", "field"),
    [
        ("name", models.CharField(max_length=40)),
        ("name", models.CharField(max_length=40, null=True)),
        ("note", models.CharField(max_length=40, null=True)),
    ],
    ids=["stays_not_null", "becomes_nullable", "stays_nullable"],
)
def test_leaves_other_alter_field_alone(engine, name, field):
    op = migrations.AlterField("item", name, field)
    leaves_alone("SM205", judge([op], setup=SETUP, engine=engine))


def test_leaves_an_unmanaged_model_alone():
    legacy = migrations.CreateModel(
        "Legacy",
        [("id", models.BigAutoField(primary_key=True))],
        options={"managed": False, "db_table": "legacy"},
    )
    op = migrations.AddField("legacy", "sku", models.CharField(max_length=10, default="none"))
    leaves_alone("SM205", judge([op], setup=[legacy]))
