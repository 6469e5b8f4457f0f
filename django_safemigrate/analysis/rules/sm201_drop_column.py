"""Dropping a column loses its data and breaks the code that still reads it.

``ALTER TABLE … DROP COLUMN`` is quick (a catalog change under a brief ACCESS
EXCLUSIVE lock), but the data is gone, and during a deploy the old code is
still running: Django selects every field of a model by name, so each query of
the old code fails with "column does not exist" until it is replaced.

Safe alternative, in two releases: first remove every use of the field and
make it nullable (or give it a ``db_default``), and drop it from the model state
only with ``SeparateDatabaseAndState`` (state side ``RemoveField``, no database
side); after that release is everywhere, drop the column in a post-deploy
migration.

https://www.postgresql.org/docs/current/sql-altertable.html
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.core.exceptions import FieldDoesNotExist
from django.db.migrations import RemoveField, SeparateDatabaseAndState
from pglast import ast
from pglast.enums import AlterTableType

from django_safemigrate.analysis.context import OperationContext, StatementContext
from django_safemigrate.analysis.findings import Hit
from django_safemigrate.analysis.operations import database_side, state_model
from django_safemigrate.analysis.pgtree import alter_commands, relation_name
from django_safemigrate.analysis.registry import Rule
from django_safemigrate.enums import LockMode, Risk

rule = Rule(code="SM201", name="drop-column", severity=Risk.DESTRUCTIVE, doc=__doc__)


@rule.on_statement(ast.AlterTableStmt)
def check(node: ast.AlterTableStmt, ctx: StatementContext) -> Iterator[Hit]:
    table = relation_name(node.relation)
    for cmd in alter_commands(node):
        if cmd.subtype != AlterTableType.AT_DropColumn:
            continue
        # A table created earlier in the same migration or deploy holds no data yet.
        yield _hit(table, str(cmd.name), new=ctx.migration.is_new_table(table))


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
        yield _hit(table, str(column), new=ctx.migration.is_new_table(table))


def _hit(table: str | None, column: str, *, new: bool) -> Hit:
    return Hit(
        message=(
            f"DROP COLUMN {column} on {table} deletes the column's data, and the code "
            "still running selects it by name."
        ),
        hint=(
            "Stop using the field in one release and remove it from the model state only "
            "(SeparateDatabaseAndState with state_operations=[RemoveField(...)]); drop the "
            "column in a later, post-deploy migration."
        ),
        table=table,
        lock=LockMode.ACCESS_EXCLUSIVE,
        rewrites_table=False,
        blocking=not new,
    )
