"""A NOT NULL column without a database default breaks the inserts of the code still running.

``AddField`` of a NOT NULL field adds the column with a ``DEFAULT`` (to fill the
existing rows) and, in the same migration, drops that ``DEFAULT`` again: a
field's ``default`` lives in Python, not in the database. During a deploy the
old code is still running; it does not know the new column, so its INSERTs
leave it out, PostgreSQL has no default to put in it, and every one of them
fails with a not-null violation until the old code is replaced.

``AlterField`` that makes a nullable column NOT NULL breaks the old code the
same way: its model still says ``null=True``, so it writes NULL (explicitly,
for every field it does not set) and the INSERT or UPDATE fails.

Safe alternative for a new column: give the field a database default
(Django 5.0+), which stays on the column::

    migrations.AddField(
        "order", "status", models.CharField(max_length=20, db_default="new"),
    )

On older Django, or when there is no sensible constant: add the column
nullable, backfill it, and make it NOT NULL in a later, post-deploy migration,
once no running code writes NULL. For ``AlterField``, make it NOT NULL only
after the release that always sets the field is everywhere, or give the field
a ``db_default`` in that earlier release (then the old code's INSERTs send
``DEFAULT`` instead of NULL).

The migration is judged as other sessions see it, at each commit: a default that a
later statement of the same transaction sets on the column again (``AlterField`` adding a
``db_default``, ``RunSQL("ALTER TABLE … ALTER COLUMN … SET DEFAULT …")``) serves the old
code's INSERTs, and is no finding; ``db_default=None`` is no default (Django renders
``DEFAULT NULL``, and on a table with rows the ``ADD COLUMN`` itself fails). Hand-written
SQL is judged like the operations: ``RunSQL("ALTER TABLE … ADD COLUMN … NOT NULL")``
without a default that stays, and ``ALTER COLUMN … SET NOT NULL`` on a column whose
model (before the migration) is ``null=True``, or that no model describes.

Fields of a table created in the same migration, auto-incrementing, identity, serial and
generated columns are left alone: no running code inserts without them.

https://docs.djangoproject.com/en/stable/ref/models/fields/#db-default
https://www.postgresql.org/docs/current/ddl-default.html
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.core.exceptions import FieldDoesNotExist
from django.db import models
from django.db.migrations import AddField, AlterField, CreateModel, SeparateDatabaseAndState
from django.db.models.expressions import Value
from django.db.models.fields import NOT_PROVIDED, AutoFieldMixin
from pglast import ast
from pglast.enums import AlterTableType, ConstrType

from django_safemigrate.analysis.context import OperationContext, StatementContext
from django_safemigrate.analysis.findings import Hit
from django_safemigrate.analysis.operations import database_side, state_model
from django_safemigrate.analysis.pgtree import alter_commands, relation_name
from django_safemigrate.analysis.registry import Rule
from django_safemigrate.analysis.run_order import Placed, RunOrder
from django_safemigrate.enums import Kind, Risk

rule = Rule(
    code="SM205",
    name="not-null-column-without-db-default",
    severity=Risk.RISKY,
    doc=__doc__,
    kinds=(Kind.BREAKS_OLD_CODE,),
)


@rule.on_operation(AddField, AlterField, SeparateDatabaseAndState)
def check(operation: Any, ctx: OperationContext) -> Iterator[Hit]:
    if ctx.from_state is None:
        return
    created: set[str] = set()  # models created earlier on the same database side
    for op, state in database_side(operation, ctx.from_state, ctx.app_label):
        if isinstance(op, CreateModel):
            created.add(op.name_lower)
            continue
        if not isinstance(op, AddField | AlterField) or op.model_name_lower in created:
            continue
        model = state_model(state, ctx.app_label, op.model_name)
        if model is None or not op.allow_migrate_model(ctx.migration.connection.alias, model):
            continue  # unmanaged, proxy, or routed to another database: no SQL
        table = str(model._meta.db_table)
        if ctx.migration.is_new_table(table):
            continue
        if isinstance(op, AddField):
            yield from _added(op, table, ctx)
        else:
            yield from _altered(op, model, table)


@rule.on_statement(ast.AlterTableStmt)
def check_sql(node: ast.AlterTableStmt, ctx: StatementContext) -> Iterator[Hit]:
    """``RunSQL``: the same facts, read from the statement (Django's own statements are
    judged with their operation, above, which knows the model)."""
    table = relation_name(node.relation)
    mctx = ctx.migration
    if not ctx.statement.handwritten or not table or mctx.is_new_table(table):
        return
    placed = mctx.run_order.find(ctx.operation.sql.index, ctx.statement)
    for cmd in alter_commands(node):
        if cmd.subtype == AlterTableType.AT_AddColumn and isinstance(cmd.def_, ast.ColumnDef):
            column = cmd.def_
            if placed is None or _column_fills_itself(column):
                continue
            gap = _commit_without_default(mctx.run_order, placed, table, str(column.colname))
            if gap is not None:
                yield _added_hit(table, str(column.colname), fails=_no_default_at_all(column))
        elif cmd.subtype == AlterTableType.AT_SetNotNull and cmd.name:
            old = _old_field(ctx, table, str(cmd.name))
            if old is not None and not old.null:
                continue  # the running code never writes NULL there
            if (
                old is not None
                and _has_db_default(old)
                and placed is not None
                and _commit_without_default(mctx.run_order, placed, table, str(cmd.name)) is None
            ):
                continue  # it sends DEFAULT, and the default stays
            yield _not_null_hit(table, str(cmd.name), known=old is not None)


def _added(op: AddField, table: str, ctx: OperationContext) -> Iterator[Hit]:
    field = op.field
    if field.null or _has_db_default(field) or _has_no_column(field) or _fills_itself(field):
        return
    column = field.db_column or field.get_attname_column()[1] or op.name
    sequence = ctx.migration.run_order
    added = _adding_statement(sequence.of_operation(ctx.sql.index), table, column)
    if added is not None and _commit_without_default(sequence, added, table, column) is None:
        return  # a later statement of the same transaction gives it a default that stays
    yield _added_hit(table, column, fails=_db_default_is_null(field))


def _added_hit(table: str, column: str, *, fails: bool) -> Hit:
    outright = (
        " On a table with rows the statement itself fails: the existing rows have no value."
        if fails
        else ""
    )
    return Hit(
        message=(
            f"Column {column} is added to {table} NOT NULL without a database default: "
            "once the migration ran, every INSERT from the code still running (which leaves "
            f"the column out) fails with a not-null violation.{outright}"
        ),
        hint=ADD_HINT,
        table=table,
    )


ADD_HINT = (
    "Give the column a database default that stays on it (on the field: "
    "db_default=<value>, Django 5.0+; in SQL: ADD COLUMN ... DEFAULT <value> NOT NULL, "
    "without dropping the default afterwards); or add it nullable, backfill it, and make it "
    "NOT NULL in a later, post-deploy migration."
)
NOT_NULL_HINT = (
    "Make the column NOT NULL in a later, post-deploy migration, once no running release "
    "writes NULL (backfill the NULL rows first); or, in the release before, give the "
    "nullable field a database default (db_default=<value>, Django 5.0+) so the old code's "
    "INSERTs send DEFAULT."
)


def _not_null_hit(table: str, column: str, *, known: bool) -> Hit:
    who = (
        "the code still running has null=True for it and writes NULL where the field is unset"
        if known
        else "no model describes the column, so the code still running may write NULL to it"
    )
    return Hit(
        message=(
            f"Column {column} of {table} becomes NOT NULL: {who}, which now fails with a "
            "not-null violation."
        ),
        hint=NOT_NULL_HINT,
        table=table,
    )


def _adding_statement(placed: list[Placed], table: str, column: str) -> Placed | None:
    """The statement of an operation that adds ``column`` to ``table``."""
    for p in placed:
        tree = p.statement.tree
        if isinstance(tree, ast.AlterTableStmt) and relation_name(tree.relation) == table:
            for cmd in alter_commands(tree):
                if (
                    cmd.subtype == AlterTableType.AT_AddColumn
                    and isinstance(cmd.def_, ast.ColumnDef)
                    and cmd.def_.colname == column
                ):
                    return p
    return None


def _commit_without_default(
    sequence: RunOrder, start: Placed, table: str, column: str
) -> Placed | None:
    """The first commit from ``start``'s on after which the column is NOT NULL with no
    default (other sessions' INSERTs that leave it out fail); ``None`` if there is none."""
    for state in sequence.column_defaults_at_commits(start, table, column):
        if state.not_null and state.default is None:
            return state.after
    return None


def _no_default_at_all(column: ast.ColumnDef) -> bool:
    """NOT NULL with no default (or ``DEFAULT NULL``): existing rows cannot be filled."""
    from django_safemigrate.analysis.run_order import is_null

    defaults = [
        c.raw_expr
        for c in column.constraints or ()
        if getattr(c, "contype", None) == ConstrType.CONSTR_DEFAULT
    ]
    return not defaults or all(is_null(d) for d in defaults)


def _column_fills_itself(column: ast.ColumnDef) -> bool:
    """Identity, generated and serial columns get their value from the database."""
    kinds = {getattr(c, "contype", None) for c in column.constraints or ()}
    if kinds & {ConstrType.CONSTR_IDENTITY, ConstrType.CONSTR_GENERATED}:
        return True
    names = [str(n.sval) for n in (column.typeName.names if column.typeName else ()) or ()]
    return bool(names) and names[-1] in _SERIAL


_SERIAL = {"serial", "serial2", "serial4", "serial8", "smallserial", "bigserial"}


def _old_field(ctx: StatementContext, table: str, column: str) -> Any:
    """The field of the model (before the migration) stored in ``column`` of ``table``."""
    state = ctx.migration.state_before
    if state is None:
        return None
    for model in state.apps.get_models():
        if model._meta.db_table != table:
            continue
        for field in model._meta.local_fields:
            if field.column == column:
                return field
    return None


def _altered(op: AlterField, model: Any, table: str) -> Iterator[Hit]:
    try:
        old = model._meta.get_field(op.name)
    except FieldDoesNotExist:
        return
    new = op.field
    if not old.null or new.null or _has_no_column(old):
        return
    # The old code inserts DEFAULT only where its own field has a db_default, and
    # that DEFAULT is NULL unless the new field keeps one.
    if _has_db_default(old) and _has_db_default(new):
        return
    yield Hit(
        message=(
            f"Column {old.column} of {table} becomes NOT NULL: the code still running has "
            "null=True for it and writes NULL where the field is unset, which now fails with a "
            "not-null violation."
        ),
        hint=NOT_NULL_HINT,
        table=table,
    )


def _has_db_default(field: Any) -> bool:
    """A database default that gives a value: ``db_default=None`` renders ``DEFAULT NULL``,
    which is no default for a NOT NULL column. (``db_default`` exists since Django 5.0.)"""
    default = getattr(field, "db_default", NOT_PROVIDED)
    return default is not NOT_PROVIDED and not _db_default_is_null(field)


def _db_default_is_null(field: Any) -> bool:
    default = getattr(field, "db_default", NOT_PROVIDED)
    return default is None or (isinstance(default, Value) and default.value is None)


def _has_no_column(field: Any) -> bool:
    """Many-to-many fields and other relations that live outside the table."""
    if field.many_to_many:
        return True
    return isinstance(field, models.ForeignObject) and not isinstance(field, models.ForeignKey)


def _fills_itself(field: Any) -> bool:
    """Identity and generated columns get their value from the database."""
    return isinstance(field, AutoFieldMixin) or bool(getattr(field, "generated", False))
