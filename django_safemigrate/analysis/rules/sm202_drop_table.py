"""Dropping a table deletes all of its rows, and the code still running queries it.

``DROP TABLE`` is what ``DeleteModel`` runs, and what removing a
``ManyToManyField`` runs for its through table. It is quick (a catalog change
under a brief ACCESS EXCLUSIVE lock), but the rows are gone with no way back,
and during a deploy the old code is still running: every query it makes on the
model fails with "relation does not exist" until it is replaced.

Safe alternative, in two releases. First stop using the model and remove it
from the migration state only, leaving the table in place::

    migrations.SeparateDatabaseAndState(
        state_operations=[migrations.DeleteModel("Item")],
    )

Once that release runs everywhere (and the data is backed up if it matters),
drop the table in a later, post-deploy migration, and acknowledge it there::

    class Migration(migrations.Migration):
        safemigrate_acknowledge = {"SM202": "Item unused since release 42"}
        operations = [
            migrations.RunSQL("DROP TABLE shop_item", reverse_sql=migrations.RunSQL.noop),
        ]

A table created earlier in the same migration holds no data yet: dropping it
is reported but does not block.

https://docs.djangoproject.com/en/stable/ref/migration-operations/#separatedatabaseandstate
https://www.postgresql.org/docs/current/sql-droptable.html
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.db.migrations import DeleteModel, RemoveField, SeparateDatabaseAndState
from django.db.migrations.state import ProjectState
from pglast import ast
from pglast.enums import ObjectType

from django_safemigrate.analysis.context import OperationContext, StatementContext
from django_safemigrate.analysis.findings import Hit
from django_safemigrate.analysis.operations import database_side, state_model
from django_safemigrate.analysis.registry import Rule
from django_safemigrate.enums import LockMode, Risk

rule = Rule(code="SM202", name="drop-table", severity=Risk.DESTRUCTIVE, doc=__doc__)

HINT = (
    "Stop using the model first and remove it from the state only "
    "(migrations.SeparateDatabaseAndState(state_operations=[migrations.DeleteModel(...)]), "
    "or for a ManyToManyField, state_operations=[migrations.RemoveField(...)]); drop the table "
    "in a later, post-deploy migration with safemigrate_acknowledge = {'SM202': '<why>'}."
)


@rule.on_statement(ast.DropStmt)
def check(node: ast.DropStmt, ctx: StatementContext) -> Iterator[Hit]:
    if node.removeType != ObjectType.OBJECT_TABLE:
        return
    for name in node.objects or ():
        # Each object is a qualified name: (schema, table) or (table,).
        table = str(name[-1].sval)
        yield _hit(table, new=ctx.migration.is_new_table(table))


@rule.on_operation(DeleteModel, RemoveField, SeparateDatabaseAndState)
def check_unrendered(operation: Any, ctx: OperationContext) -> Iterator[Hit]:
    """When the backend could not render the SQL, judge the operation itself."""
    if ctx.sql.render_error is None or ctx.from_state is None:
        return
    for op, state in database_side(operation, ctx.from_state, ctx.app_label):
        for table in _tables_dropped(op, state, ctx.app_label, ctx.migration.connection.alias):
            yield _hit(table, new=ctx.migration.is_new_table(table))


def _hit(table: str, *, new: bool) -> Hit:
    return Hit(
        message=(
            f"DROP TABLE {table} deletes every row of the table, and the code still running "
            "queries it by name."
        ),
        hint=HINT,
        table=table,
        lock=LockMode.ACCESS_EXCLUSIVE,
        rewrites_table=False,
        blocking=not new,
    )


def _tables_dropped(
    operation: Any, state: ProjectState, app_label: str, alias: str
) -> Iterator[str]:
    """Tables the operation drops; none for unmanaged and proxy models, or when a router
    keeps the model off this database."""
    if isinstance(operation, DeleteModel):
        model = state_model(state, app_label, operation.name)
        if model is None or not operation.allow_migrate_model(alias, model):
            return
        yield str(model._meta.db_table)
        fields = list(model._meta.local_many_to_many)
    elif isinstance(operation, RemoveField):
        model = state_model(state, app_label, operation.model_name)
        if model is None or not operation.allow_migrate_model(alias, model):
            return
        fields = [f for f in model._meta.local_many_to_many if f.name == operation.name]
    else:
        return
    for field in fields:
        through = field.remote_field.through
        if through._meta.auto_created:
            yield str(through._meta.db_table)
