from __future__ import annotations

from typing import Any

import pytest
from django.db import migrations, models

from tests.rules.judge import flags, judge, judge_report, leaves_alone

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


ORDER = migrations.CreateModel(
    "Order",
    [
        ("id", models.BigAutoField(primary_key=True)),
        ("item", models.ForeignKey("testapp.item", on_delete=models.CASCADE, null=True)),
        ("tags", models.ManyToManyField("testapp.item", related_name="+")),
    ],
)


def test_offline_a_foreign_key_removal_renders_with_djangos_constraint_name():
    # Dropping the column first drops its foreign key constraint, whose name Django asks
    # the live schema for; offline it gets the name Django gave it.
    op = migrations.RemoveField("order", "item")
    report = judge_report([op], setup=[ITEM, ORDER], offline=True)
    finding = flags("SM201", report.findings)
    assert finding.table == "testapp_order"
    # Django 6 no longer adds CASCADE.
    assert finding.sql.startswith('ALTER TABLE "testapp_order" DROP COLUMN "item_id"')
    sql = [s.sql for o in report.operations for s in o.statements]
    assert any("DROP CONSTRAINT" in s and "item_id" in s for s in sql), sql
    assert report.phase.value == "post_deploy"


def test_a_removal_whose_sql_cannot_be_rendered_is_judged_from_the_operation(monkeypatch):
    from django.db import DatabaseError
    from django.db.backends.base.schema import BaseDatabaseSchemaEditor

    def refuse(*args, **kwargs):
        raise DatabaseError("this backend needs the live schema")

    monkeypatch.setattr(BaseDatabaseSchemaEditor, "remove_field", refuse)
    op = migrations.RemoveField("order", "item")
    report = judge_report([op], setup=[ITEM, ORDER], offline=True)
    assert report.operations[0].render_error
    finding = flags("SM201", report.findings)
    assert finding.table == "testapp_order"
    assert "item_id" in finding.message
    assert finding.sql is None  # judged from the operation
    assert report.risk.value == "destructive"
    assert report.phase.value == "post_deploy"
    wrapped = migrations.SeparateDatabaseAndState(
        database_operations=[migrations.RemoveField("order", "item")],
        state_operations=[migrations.RemoveField("order", "item")],
    )
    assert flags("SM201", judge([wrapped], setup=[ITEM, ORDER])).table == "testapp_order"
    # No column, no SM201: a many-to-many field's through table is SM202's, and a
    # state-only removal runs nothing.
    leaves_alone("SM201", judge([migrations.RemoveField("order", "tags")], setup=[ITEM, ORDER]))
    state_only = migrations.SeparateDatabaseAndState(
        state_operations=[migrations.RemoveField("order", "item")]
    )
    leaves_alone("SM201", judge([state_only], setup=[ITEM, ORDER]))


def test_offline_a_plain_column_removal_is_judged_once_from_its_sql():
    found = [
        f
        for f in judge([migrations.RemoveField("item", "legacy")], setup=[ITEM], offline=True)
        if f.code == "SM201"
    ]
    assert len(found) == 1
    assert found[0].sql is not None


REQUIRED = migrations.CreateModel(
    "Item",
    [
        ("id", models.BigAutoField(primary_key=True)),
        ("name", models.CharField(max_length=20)),
        ("legacy", models.CharField(max_length=20)),
        ("owner", models.ForeignKey("testapp.item", on_delete=models.CASCADE, null=True)),
    ],
)
NULLABLE_FIRST = (
    "migrations.SeparateDatabaseAndState(database_operations=[migrations.AlterField('item', "
    "'legacy', models.CharField(max_length=20, null=True))], state_operations=["
    "migrations.RemoveField('item', 'legacy')])"
)


def _code_in(hint: str) -> Any:
    """The ``migrations.SeparateDatabaseAndState(...)`` the hint gives, evaluated."""
    start = hint.index("migrations.SeparateDatabaseAndState(")
    depth = 0
    for end in range(start, len(hint)):
        depth += {"(": 1, ")": -1}.get(hint[end], 0)
        if hint[end] == ")" and depth == 0:
            return eval(hint[start : end + 1], {"migrations": migrations, "models": models})
    raise AssertionError(hint)


@pytest.mark.parametrize(
    "operation",
    [
        migrations.RemoveField("item", "legacy"),
        migrations.RunSQL("ALTER TABLE testapp_item DROP COLUMN legacy"),
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RemoveField("item", "legacy")],
            state_operations=[migrations.RemoveField("item", "legacy")],
        ),
    ],
    ids=["remove-field", "handwritten", "database-side"],
)
def test_hint_for_a_not_null_column_makes_it_nullable_in_the_state_only_removal(operation):
    hint = flags("SM201", judge([operation], setup=[REQUIRED])).hint
    assert NULLABLE_FIRST in hint
    assert "NOT NULL without a database default" in hint
    assert "new code's INSERTs, which no longer name it" in hint
    assert "db_default=<value> instead of null=True" in hint
    assert hint.endswith("drop the column in a later, post-deploy migration.")


def test_hint_writes_the_field_as_a_migration_would():
    hint = flags("SM201", judge([migrations.RemoveField("item", "name")], setup=[REQUIRED])).hint
    assert "migrations.AlterField('item', 'name', models.CharField(max_length=20, null=True))" in (
        hint
    )
    # A nullable column already accepts the new code's INSERTs: state only, nothing else.
    hint = flags("SM201", judge([migrations.RemoveField("item", "owner")], setup=[REQUIRED])).hint
    assert "migrations.SeparateDatabaseAndState(state_operations=[migrations.RemoveField(" in hint
    assert "AlterField" not in hint
    with_default = migrations.AddField("item", "flag", models.BooleanField(db_default=False))
    hint = flags(
        "SM201", judge([migrations.RemoveField("item", "flag")], setup=[REQUIRED, with_default])
    ).hint
    assert "AlterField" not in hint
    # Hand-written SQL on a table the state does not know: the advice in words.
    hint = flags("SM201", judge([migrations.RunSQL("ALTER TABLE other DROP COLUMN x")])).hint
    assert "AlterField(..., null=True)" in hint
    assert "db_default" in hint


def test_the_hints_migration_lets_the_new_codes_inserts_through_on_the_server():
    """Applied to a real table, the hint's operation makes the column accept the INSERTs of
    the code that no longer knows the field; a bare state-only removal does not."""
    from django.db import IntegrityError, connection, transaction
    from django.db.migrations.state import ProjectState

    hint = flags("SM201", judge([migrations.RemoveField("item", "legacy")], setup=[REQUIRED])).hint
    suggested = _code_in(hint)
    bare = migrations.SeparateDatabaseAndState(
        state_operations=[migrations.RemoveField("item", "legacy")]
    )

    def apply(operation: Any, state: ProjectState) -> ProjectState:
        after = state.clone()
        operation.state_forwards("testapp", after)
        with connection.schema_editor() as editor:
            operation.database_forwards("testapp", editor, state, after)
        return after

    before = apply(REQUIRED, ProjectState())
    with transaction.atomic():
        state = apply(bare, before)
        with pytest.raises(IntegrityError) as failed, transaction.atomic():
            state.apps.get_model("testapp", "item").objects.create(name="new code")
        assert failed.value.__cause__.sqlstate == "23502"  # not_null_violation
        transaction.set_rollback(True)
    state = apply(suggested, before)
    item = state.apps.get_model("testapp", "item").objects.create(name="new code")
    with connection.cursor() as cursor:
        cursor.execute("SELECT legacy FROM testapp_item WHERE id = %s", [item.pk])
        assert cursor.fetchone() == (None,)
