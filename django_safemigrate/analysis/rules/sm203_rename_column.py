"""Renaming a column breaks the code still running, which uses the old name.

``ALTER TABLE … RENAME COLUMN`` is what ``RenameField`` runs, and what
``AlterField`` runs when the field's column name changes (a new ``db_column``).
It is quick (a catalog change under a brief ACCESS EXCLUSIVE lock), but during a
deploy the old code is still running, and Django names every column in its
queries: each SELECT, INSERT and UPDATE of the old code fails with "column does
not exist" until it is replaced. Nothing can be done about it after the fact
except renaming back.

Safe alternative: rename the field in Python only and keep the column name,
with ``db_column``. Rename the field and set ``db_column`` to the old column in
the same change; ``makemigrations`` then pins the column name first and renames
second, and ``RenameField`` of a field whose column stays the same runs no SQL::

    # models.py
    title = models.CharField(max_length=200, db_column="name")

    # the migration: neither operation runs SQL
    operations = [
        migrations.AlterField(
            "item", "name", models.CharField(max_length=200, db_column="name")
        ),
        migrations.RenameField("item", "name", "title"),
    ]

The same rename written as state only::

    migrations.SeparateDatabaseAndState(
        state_operations=[
            migrations.RenameField("item", "name", "title"),
            migrations.AlterField(
                "item", "title", models.CharField(max_length=200, db_column="name")
            ),
        ],
    )

When the column itself must change name: add the new column, write both from
the code, backfill the new one, switch reads to it, and drop the old column in
a later, post-deploy migration.

A column of a table created earlier in the same migration is reported but does
not block: no running code uses it yet.

https://docs.djangoproject.com/en/stable/ref/models/fields/#db-column
https://www.postgresql.org/docs/current/sql-altertable.html
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.core.exceptions import FieldDoesNotExist
from django.db.migrations import AlterField, RenameField, SeparateDatabaseAndState
from django.db.migrations.state import ProjectState
from pglast import ast
from pglast.enums import ObjectType

from django_safemigrate.analysis.context import OperationContext, StatementContext
from django_safemigrate.analysis.findings import Hit
from django_safemigrate.analysis.operations import database_side
from django_safemigrate.analysis.pgtree import relation_name
from django_safemigrate.analysis.registry import Rule
from django_safemigrate.enums import Kind, LockMode, Risk

rule = Rule(
    code="SM203",
    name="rename-column",
    severity=Risk.DESTRUCTIVE,
    doc=__doc__,
    kinds=(Kind.BREAKS_OLD_CODE,),
)


@rule.on_statement(ast.RenameStmt)
def check(node: ast.RenameStmt, ctx: StatementContext) -> Iterator[Hit]:
    # RENAME COLUMN of a table, view or materialized view; OBJECT_ATTRIBUTE would
    # be a composite type's attribute, which no query names through a model.
    if node.renameType != ObjectType.OBJECT_COLUMN:
        return
    table = relation_name(node.relation)
    if table is None:
        return
    yield _hit(table, str(node.subname), str(node.newname), new=ctx.migration.is_new_table(table))


@rule.on_operation(RenameField, AlterField, SeparateDatabaseAndState)
def check_unrendered(operation: Any, ctx: OperationContext) -> Iterator[Hit]:
    """When the backend refused to render the SQL (django-pg-zero-downtime-migrations
    with ``ZERO_DOWNTIME_MIGRATIONS_RAISE_FOR_UNSAFE``), judge the operation itself."""
    if ctx.sql.render_error is None or ctx.from_state is None:
        return
    for op, before in database_side(operation, ctx.from_state, ctx.app_label):
        if not isinstance(op, RenameField | AlterField):
            continue
        after = before.clone()
        op.state_forwards(ctx.app_label, after)
        old_name = op.old_name if isinstance(op, RenameField) else op.name
        new_name = op.new_name if isinstance(op, RenameField) else op.name
        old = _field(before, ctx.app_label, op.model_name, old_name)
        new = _field(after, ctx.app_label, op.model_name, new_name)
        if old is None or new is None or old.column == new.column:
            continue
        if not op.allow_migrate_model(ctx.migration.connection.alias, old.model):
            continue  # unmanaged, proxy, or routed to another database: no SQL
        table = str(old.model._meta.db_table)
        yield _hit(table, old.column, new.column, new=ctx.migration.is_new_table(table))


def _hit(table: str, old: str, new_name: str, *, new: bool) -> Hit:
    return Hit(
        message=(
            f"RENAME COLUMN {old} TO {new_name} on {table}: the code still running reads and "
            f"writes {old} by name and fails until it is replaced."
        ),
        hint=(
            "Keep the column name and rename the field only: first "
            f'AlterField(..., db_column="{old}") (no SQL), then RenameField (no SQL once '
            "db_column is set); or rename in the state "
            "only: SeparateDatabaseAndState(state_operations=[RenameField(...), "
            f'AlterField(..., db_column="{old}")]). '
            "To really rename it: add the new column, write both, backfill, switch reads, and "
            "drop the old column in a later, post-deploy migration."
        ),
        table=table,
        lock=LockMode.ACCESS_EXCLUSIVE,
        rewrites_table=False,
        blocking=not new,
    )


def _field(state: ProjectState, app_label: str, model_name: str, name: str) -> Any:
    if (app_label, model_name.lower()) not in state.models:
        return None
    try:
        return state.apps.get_model(app_label, model_name)._meta.get_field(name)
    except FieldDoesNotExist:
        return None
