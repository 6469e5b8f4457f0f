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

Fields of a table created in the same migration, auto-incrementing and
generated fields are left alone: no running code inserts without them.

https://docs.djangoproject.com/en/stable/ref/models/fields/#db-default
https://www.postgresql.org/docs/current/ddl-default.html
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.core.exceptions import FieldDoesNotExist
from django.db import models
from django.db.migrations import AddField, AlterField, CreateModel, SeparateDatabaseAndState
from django.db.models.fields import NOT_PROVIDED, AutoFieldMixin

from django_safemigrate.analysis.context import OperationContext
from django_safemigrate.analysis.findings import Hit
from django_safemigrate.analysis.operations import database_side, state_model
from django_safemigrate.analysis.registry import Rule
from django_safemigrate.enums import Risk

rule = Rule(
    code="SM205", name="not-null-column-without-db-default", severity=Risk.RISKY, doc=__doc__
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
            yield from _added(op, table)
        else:
            yield from _altered(op, model, table)


def _added(op: AddField, table: str) -> Iterator[Hit]:
    field = op.field
    if field.null or _has_db_default(field) or _has_no_column(field) or _fills_itself(field):
        return
    yield Hit(
        message=(
            f"Column {op.name} is added to {table} NOT NULL without a database default: "
            "once the migration ran, every INSERT from the code still running (which leaves "
            "the column out) fails with a not-null violation."
        ),
        hint=(
            f"Give the field a database default, e.g. {_field_call(field)}(..., "
            "db_default=<value>) (Django 5.0+); or add it with null=True, backfill it, and "
            "make it NOT NULL in a later, post-deploy migration."
        ),
        table=table,
    )


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
        hint=(
            "Make the column NOT NULL in a later, post-deploy migration, once no running "
            "release writes NULL (backfill the NULL rows first); or, in the release before, give "
            f"the nullable field a database default ({_field_call(new)}(..., null=True, "
            "db_default=<value>), Django 5.0+) so the old code's INSERTs send DEFAULT."
        ),
        table=table,
    )


def _has_db_default(field: Any) -> bool:
    """``db_default`` exists since Django 5.0; ``has_db_default()`` since 5.2."""
    has = getattr(field, "has_db_default", None)
    if callable(has):
        return bool(has())
    return getattr(field, "db_default", NOT_PROVIDED) is not NOT_PROVIDED


def _has_no_column(field: Any) -> bool:
    """Many-to-many fields and other relations that live outside the table."""
    if field.many_to_many:
        return True
    return isinstance(field, models.ForeignObject) and not isinstance(field, models.ForeignKey)


def _fills_itself(field: Any) -> bool:
    """Identity and generated columns get their value from the database."""
    return isinstance(field, AutoFieldMixin) or bool(getattr(field, "generated", False))


def _field_call(field: Any) -> str:
    """``models.CharField`` for Django's own fields, the bare class name otherwise."""
    cls = type(field)
    prefix = "models." if cls.__module__.startswith("django.db.models") else ""
    return f"{prefix}{cls.__name__}"
