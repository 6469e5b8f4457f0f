"""Dropping a column loses its data and breaks the code that still reads it.

``ALTER TABLE … DROP COLUMN`` is quick (a catalog change under a brief ACCESS
EXCLUSIVE lock), but the data is gone, and during a deploy the old code is
still running: Django selects every field of a model by name, so each query of
the old code fails with "column does not exist" until it is replaced.

Safe alternative, in two releases. First remove every use of the field, and
remove it from the model state only, leaving the column in place. The code of
that release no longer names the column in its INSERTs, so while the column
exists it must accept them: a NOT NULL column without a database default would
fail every one with a not-null violation. Make it nullable (or give it a
``db_default``, Django 5.0+) in the same migration::

    migrations.SeparateDatabaseAndState(
        database_operations=[
            migrations.AlterField("item", "legacy", models.CharField(max_length=20, null=True)),
        ],
        state_operations=[migrations.RemoveField("item", "legacy")],
    )

(``DROP NOT NULL`` is a catalog change, no scan.) After that release is
everywhere, drop the column in a post-deploy migration. The hint names the
field and its ``AlterField`` when the state knows them.

https://www.postgresql.org/docs/current/sql-altertable.html
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

from django.core.exceptions import FieldDoesNotExist
from django.db.migrations import RemoveField, SeparateDatabaseAndState
from django.db.migrations.state import ProjectState
from django.db.migrations.writer import MigrationWriter
from django.db.models.fields import NOT_PROVIDED, AutoFieldMixin
from pglast import ast
from pglast.enums import AlterTableType

from django_safemigrate.analysis.context import OperationContext, StatementContext
from django_safemigrate.analysis.findings import Hit
from django_safemigrate.analysis.operations import database_side, state_model, state_table
from django_safemigrate.analysis.pgtree import alter_commands, relation_name
from django_safemigrate.analysis.registry import Rule
from django_safemigrate.enums import Kind, LockMode, Risk

rule = Rule(
    code="SM201",
    name="drop-column",
    severity=Risk.DESTRUCTIVE,
    doc=__doc__,
    kinds=(
        Kind.LOSES_DATA,
        Kind.BREAKS_OLD_CODE,
    ),
)


@rule.on_statement(ast.AlterTableStmt)
def check(node: ast.AlterTableStmt, ctx: StatementContext) -> Iterator[Hit]:
    table = relation_name(node.relation)
    for cmd in alter_commands(node):
        if cmd.subtype != AlterTableType.AT_DropColumn:
            continue
        column = str(cmd.name)
        # A table created earlier in the same migration or deploy holds no data yet.
        new = ctx.migration.is_new_table(table)
        yield _hit(table, column, new=new, removed=_removed_field(ctx, table, column))


@rule.on_operation(RemoveField, SeparateDatabaseAndState)
def check_unrendered(operation: Any, ctx: OperationContext) -> Iterator[Hit]:
    """When the SQL could not be rendered (offline, dropping a foreign key column needs the
    live schema to name its constraint), judge the operation itself."""
    if ctx.sql.render_error is None or ctx.from_state is None:
        return
    alias = ctx.migration.connection.alias
    for op, before in database_side(operation, ctx.from_state, ctx.app_label):
        if not isinstance(op, RemoveField):
            continue
        model = state_model(before, ctx.app_label, op.model_name)
        if model is None:
            continue
        try:
            field = model._meta.get_field(op.name)
        except FieldDoesNotExist:
            continue
        column = getattr(field, "column", None)
        if field.many_to_many or not column or not op.allow_migrate_model(alias, model):
            continue  # a through table (SM202), no column, or no SQL on this database
        table = str(model._meta.db_table)
        removed = Removed(str(op.model_name), str(op.name), field)
        yield _hit(table, str(column), new=ctx.migration.is_new_table(table), removed=removed)


@dataclasses.dataclass(frozen=True)
class Removed:
    """The field whose column is dropped, as the migration names it."""

    model_name: str
    name: str
    field: Any


def _removed_field(ctx: StatementContext, table: str | None, column: str) -> Removed | None:
    """The field of this app whose column ``table.column`` is, in the state before the
    operation: the ``RemoveField`` that renders the statement, or, for hand-written SQL,
    the model of the same app on that table."""
    octx = ctx.operation
    if octx.from_state is None or table is None:
        return None
    for op, before in database_side(octx.operation, octx.from_state, octx.app_label):
        if isinstance(op, RemoveField):
            found = _field_on(before, octx.app_label, op.model_name, table, column)
            if found is not None:
                return found
    for (app_label, model_name), model_state in octx.from_state.models.items():
        if app_label == octx.app_label and (
            state_table(model_state, ctx.migration.connection) == table
        ):
            return _field_on(octx.from_state, app_label, model_name, table, column)
    return None


def _field_on(
    state: ProjectState, app_label: str, model_name: str, table: str, column: str
) -> Removed | None:
    model = state_model(state, app_label, model_name)
    if model is None or model._meta.db_table != table:
        return None
    for field in model._meta.local_fields:
        if field.column == column:
            return Removed(str(model._meta.model_name), str(field.name), field)
    return None


def _hint(removed: Removed | None) -> str:
    later = "; drop the column in a later, post-deploy migration."
    if removed is None:
        return (
            "Stop using the field in one release and remove it from the model state only "
            "(SeparateDatabaseAndState with state_operations=[RemoveField(...)]), making the "
            "column nullable (AlterField(..., null=True)) or giving it a db_default in the "
            "same migration's database_operations, so the new code's INSERTs, which no longer "
            "name the column, succeed while it still exists" + later
        )
    remove = f"migrations.RemoveField({removed.model_name!r}, {removed.name!r})"
    field = removed.field
    if field.null or _has_db_default(field) or _fills_itself(field):
        return (
            "Stop using the field in one release and remove it from the model state only: "
            f"migrations.SeparateDatabaseAndState(state_operations=[{remove}]) (the column "
            "accepts the new code's INSERTs, which no longer name it)" + later
        )
    alter = f"migrations.AlterField({removed.model_name!r}, {removed.name!r}, {_nullable(field)})"
    return (
        "Stop using the field in one release; the column is NOT NULL without a database "
        "default, so the new code's INSERTs, which no longer name it, would fail while it "
        "still exists: in that release's migration make it nullable and remove the field "
        "from the model state only, migrations.SeparateDatabaseAndState("
        f"database_operations=[{alter}], state_operations=[{remove}]) (or give it a "
        "db_default=<value> instead of null=True, Django 5.0+)" + later
    )


def _nullable(field: Any) -> str:
    """The field's declaration with ``null=True``, as a migration file would write it."""
    _name, _path, args, kwargs = field.deconstruct()
    code, _imports = MigrationWriter.serialize(type(field)(*args, **{**kwargs, "null": True}))
    return str(code)


def _has_db_default(field: Any) -> bool:
    return getattr(field, "db_default", NOT_PROVIDED) is not NOT_PROVIDED


def _fills_itself(field: Any) -> bool:
    """Identity and generated columns get their value from the database."""
    return isinstance(field, AutoFieldMixin) or bool(getattr(field, "generated", False))


def _hit(table: str | None, column: str, *, new: bool, removed: Removed | None) -> Hit:
    return Hit(
        message=(
            f"DROP COLUMN {column} on {table} deletes the column's data, and the code "
            "still running selects it by name."
        ),
        hint=_hint(removed),
        table=table,
        lock=LockMode.ACCESS_EXCLUSIVE,
        rewrites_table=False,
        blocking=not new,
    )
