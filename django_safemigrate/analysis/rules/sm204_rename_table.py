"""Renaming a table breaks the code still running, which queries the old name.

``ALTER TABLE … RENAME TO`` is what ``RenameModel`` runs (for the model's table
and its many-to-many through tables) and what ``AlterModelTable`` runs;
``ALTER TABLE … SET SCHEMA`` moves a table out of the old code's reach the same
way. The statement is quick (a catalog change under a brief ACCESS EXCLUSIVE
lock), but during a deploy the old code is still running, and every query it
makes fails with "relation does not exist" until it is replaced.

Safe alternative: rename the model in Python only and keep its table, with
``db_table`` in ``Meta``. Do it in two steps, because ``makemigrations`` puts a
``RenameModel`` before an ``AlterModelTable`` (which would rename the table and
then rename it back). First pin the table name and make a migration: an
``AlterModelTable`` that runs no SQL, since the name does not change::

    class Post(models.Model):
        ...

        class Meta:
            db_table = "blog_post"

Then rename the class and make another migration: a ``RenameModel`` of a
model whose ``db_table`` stays the same renames no table. Or write the rename
as state only::

    migrations.SeparateDatabaseAndState(
        state_operations=[
            migrations.RenameModel("Post", "Article"),
            migrations.AlterModelTable("article", "blog_post"),
        ],
    )

A ``RenameModel`` also renames the columns that point at the model in
many-to-many through tables (``post_id`` to ``article_id``); SM203 reports those.

A table created earlier in the same migration is reported but does not block:
no running code uses it yet.

https://docs.djangoproject.com/en/stable/ref/models/options/#db-table
https://www.postgresql.org/docs/current/sql-altertable.html
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.db.migrations import AlterModelTable, RenameModel, SeparateDatabaseAndState
from pglast import ast
from pglast.enums import ObjectType

from django_safemigrate.analysis.context import OperationContext, StatementContext
from django_safemigrate.analysis.findings import Hit
from django_safemigrate.analysis.operations import database_side, state_model
from django_safemigrate.analysis.pgtree import relation_name
from django_safemigrate.analysis.registry import Rule
from django_safemigrate.enums import Kind, LockMode, Risk

rule = Rule(
    code="SM204",
    name="rename-table",
    severity=Risk.DESTRUCTIVE,
    doc=__doc__,
    kinds=(Kind.BREAKS_OLD_CODE,),
)


@rule.on_statement(ast.RenameStmt)
def check_rename(node: ast.RenameStmt, ctx: StatementContext) -> Iterator[Hit]:
    if node.renameType != ObjectType.OBJECT_TABLE:
        return
    table = relation_name(node.relation)
    if table is None:
        return
    yield _hit(table, f"RENAME TO {node.newname}", new=ctx.migration.is_new_table(table))


@rule.on_statement(ast.AlterObjectSchemaStmt)
def check_set_schema(node: ast.AlterObjectSchemaStmt, ctx: StatementContext) -> Iterator[Hit]:
    if node.objectType != ObjectType.OBJECT_TABLE:
        return
    table = relation_name(node.relation)
    if table is None:
        return
    yield _hit(table, f"SET SCHEMA {node.newschema}", new=ctx.migration.is_new_table(table))


@rule.on_operation(RenameModel, AlterModelTable, SeparateDatabaseAndState)
def check_unrendered(operation: Any, ctx: OperationContext) -> Iterator[Hit]:
    """When the backend refused to render the SQL (django-pg-zero-downtime-migrations
    with ``ZERO_DOWNTIME_MIGRATIONS_RAISE_FOR_UNSAFE``), judge the operation itself."""
    if ctx.sql.render_error is None or ctx.from_state is None:
        return
    for op, before in database_side(operation, ctx.from_state, ctx.app_label):
        if isinstance(op, RenameModel):
            old_name, new_name = op.old_name, op.new_name
        elif isinstance(op, AlterModelTable):
            old_name = new_name = op.name
        else:
            continue
        after = before.clone()
        op.state_forwards(ctx.app_label, after)
        old_model = state_model(before, ctx.app_label, old_name)
        new_model = state_model(after, ctx.app_label, new_name)
        if old_model is None or new_model is None:
            continue
        if not op.allow_migrate_model(ctx.migration.connection.alias, new_model):
            continue  # unmanaged, proxy, or routed to another database: no SQL
        old, new = str(old_model._meta.db_table), str(new_model._meta.db_table)
        if old == new:
            continue
        yield _hit(old, f"RENAME TO {new}", new=ctx.migration.is_new_table(old))


def _hit(table: str, change: str, *, new: bool) -> Hit:
    return Hit(
        message=(
            f"ALTER TABLE {table} {change}: the code still running queries {table} by name "
            "and fails until it is replaced."
        ),
        hint=(
            f'Keep the table: first set db_table = "{table}" in the model\'s Meta and migrate '
            "(AlterModelTable, no SQL), then rename the model (RenameModel renames no table); "
            "or rename in the state only: SeparateDatabaseAndState(state_operations=["
            f'RenameModel(...), AlterModelTable(..., "{table}")]).'
        ),
        table=table,
        lock=LockMode.ACCESS_EXCLUSIVE,
        rewrites_table=False,
        blocking=not new,
    )
