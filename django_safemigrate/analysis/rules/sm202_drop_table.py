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

The same goes for statements that drop many tables at once. ``DROP SCHEMA …
CASCADE`` drops every object of the schema, every table and its rows among them
(where the catalogs are at hand the finding names them; a schema that holds no
table does not block). A plain ``DROP SCHEMA`` (``RESTRICT``, the default)
refuses to drop a schema that still holds anything ("cannot drop schema … because
other objects depend on it"), so it loses nothing and is left alone: it is the
safe last step after the tables were dropped one by one. ``DROP DATABASE`` deletes
a whole database; a migration, which runs on every environment the project
deploys to, is no place for it (PostgreSQL also refuses it inside a transaction
block, SM301): drop it by hand, after a backup, outside the deploy.

https://docs.djangoproject.com/en/stable/ref/migration-operations/#separatedatabaseandstate
https://www.postgresql.org/docs/current/sql-droptable.html
https://www.postgresql.org/docs/current/sql-dropschema.html
https://www.postgresql.org/docs/current/sql-dropdatabase.html
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.db.migrations import DeleteModel, RemoveField, SeparateDatabaseAndState
from django.db.migrations.state import ProjectState
from pglast import ast
from pglast.enums import DropBehavior, ObjectType

from django_safemigrate.analysis.context import OperationContext, StatementContext
from django_safemigrate.analysis.findings import Hit
from django_safemigrate.analysis.operations import database_side, state_model
from django_safemigrate.analysis.registry import Rule
from django_safemigrate.enums import Kind, LockMode, Risk

rule = Rule(
    code="SM202",
    name="drop-table",
    severity=Risk.DESTRUCTIVE,
    doc=__doc__,
    kinds=(
        Kind.LOSES_DATA,
        Kind.BREAKS_OLD_CODE,
    ),
)

HINT = (
    "Stop using the model first and remove it from the state only "
    "(migrations.SeparateDatabaseAndState(state_operations=[migrations.DeleteModel(...)]), "
    "or for a ManyToManyField, state_operations=[migrations.RemoveField(...)]); drop the table "
    "in a later, post-deploy migration with safemigrate_acknowledge = {'SM202': '<why>'}."
)


#: How many tables a message names before it says "and N more".
_NAMED = 6


@rule.on_statement(ast.DropStmt)
def check(node: ast.DropStmt, ctx: StatementContext) -> Iterator[Hit]:
    if node.removeType == ObjectType.OBJECT_SCHEMA and node.behavior == DropBehavior.DROP_CASCADE:
        for schema in node.objects or ():
            yield _schema_hit(str(schema.sval), ctx)
        return
    if node.removeType != ObjectType.OBJECT_TABLE:
        return
    for name in node.objects or ():
        # Each object is a qualified name: (schema, table) or (table,).
        table = str(name[-1].sval)
        yield _hit(table, new=ctx.migration.is_new_table(table))


@rule.on_statement(ast.DropdbStmt)
def check_database(node: ast.DropdbStmt, ctx: StatementContext) -> Iterator[Hit]:
    yield Hit(
        message=(
            f"DROP DATABASE {node.dbname} deletes the whole database {node.dbname}: every "
            "table and every row in it, with no way back."
        ),
        hint=(
            "Do not drop a database in a migration: it runs on every environment the project "
            "deploys to. Back the database up and drop it by hand, outside the deploy; if it "
            "must be a migration, make it a post-deploy one (atomic = False: DROP DATABASE "
            "refuses to run in a transaction) with safemigrate_acknowledge = {'SM202': '<why>'}."
        ),
    )


def _schema_hit(schema: str, ctx: StatementContext) -> Hit:
    catalog = ctx.migration.catalog
    tables = catalog.schema_tables(schema) if catalog is not None else None
    if tables is None:
        what = "its tables and all their rows among them"
    elif not tables:
        what = "on this database it holds no table"
    else:
        what = ", ".join(tables[:_NAMED])
        if len(tables) > _NAMED:
            what += f" and {len(tables) - _NAMED} more"
        what = f"its tables and all their rows among them: {what}"
    return Hit(
        message=(
            f"DROP SCHEMA {schema} CASCADE drops every object in the schema ({what}), and the "
            "code still running queries them by name."
        ),
        hint=(
            "Stop using the schema's tables first, then drop them one by one in a later, "
            "post-deploy migration (each DROP TABLE is judged on its own) and the emptied "
            f"schema with a plain DROP SCHEMA {schema}, which refuses while anything is left "
            "in it."
        ),
        lock=LockMode.ACCESS_EXCLUSIVE,
        rewrites_table=False,
        blocking=tables != [],
    )


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
