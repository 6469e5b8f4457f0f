"""Dropping a unique constraint breaks the code still running that relies on it.

During a deploy the old code is still running, and it relies on the uniqueness
the migration removes:

- ``INSERT … ON CONFLICT (columns)`` needs a unique index or constraint on
  exactly those columns (or expressions; a partial one only when the statement
  repeats its ``WHERE``). Without it PostgreSQL refuses every such statement
  with SQLSTATE 42P10, "there is no unique or exclusion constraint matching the
  ON CONFLICT specification". Django emits it for
  ``bulk_create(update_conflicts=True, unique_fields=[…])`` (and
  ``ignore_conflicts=True`` relies on the constraint to skip duplicates).
- ``get_or_create`` and ``update_or_create`` are safe against a concurrent
  request only because the second ``INSERT`` fails with an ``IntegrityError``,
  after which Django reads the row the first one created. Without the
  constraint both requests insert; from then on every ``get_or_create``,
  ``update_or_create`` and ``get`` for that key raises
  ``MultipleObjectsReturned``.

Severity: destructive. The old code's upserts fail for as long as it runs, and
there is no way back: once a duplicate is written (by the old code's races or
by the new code, which no longer prevents them), putting the constraint back
fails until rows someone wrote are deleted. Phase: post-deploy, like dropping
a column (SM201): it is a contract step, run only once the old code is gone.

Every way a migration drops one is judged from the project state:
``RemoveConstraint`` of a ``UniqueConstraint`` (with or without a condition or
expressions), ``AlterUniqueTogether`` removing a set, ``AlterField`` turning
``unique=True`` off (a ``OneToOneField`` becoming a ``ForeignKey`` included),
and ``AlterField`` taking ``primary_key=True`` off a field that does not stay
``unique=True`` (a primary key is a unique constraint: ``ON CONFLICT (id)``
and ``get_or_create(id=…)`` rely on it like on any other). Hand-written SQL
(``ALTER TABLE … DROP CONSTRAINT``, ``DROP INDEX``) is recognised by name: the
name of a ``UniqueConstraint`` in the state, or the name Django or PostgreSQL
gives the constraint of a unique field, a ``unique_together`` set or a primary
key (``<table>_<column>_key``, ``…_uniq``, ``<table>_pkey``). What cannot be
known: whether an index or constraint that the model state does not describe
(created by hand-written SQL alone, or by hand in production) is unique; its
drop is judged by SM102 for its lock only. Django's ``Index`` (``AddIndex``,
``RemoveIndex``) is never unique.

Left alone: a constraint of a table created in the same migration (or absent
from the live database, so created earlier in the same deploy); a column or
table that the same migration drops (SM201, SM202 say more); and a constraint
replaced in the same migration by an equivalent one (same table, columns,
condition, expressions, deferral and ``nulls_distinct``), for example
``unique_together`` rewritten as a ``UniqueConstraint``. In an atomic
migration the replacement may come before or after the drop (nobody sees the
moment between); without a transaction it must come first.

Safe alternative, in two releases. First deploy code that no longer relies on
the constraint: no ``bulk_create(update_conflicts=True, unique_fields=…)`` or
``ON CONFLICT`` on those columns, and ``get_or_create`` replaced where
duplicates can now appear::

    # before: Subscription.objects.get_or_create(user=user, plan=plan)
    subscription = Subscription.objects.filter(user=user, plan=plan).first()
    if subscription is None:
        subscription = Subscription.objects.create(user=user, plan=plan)

Then, once that release runs everywhere, drop the constraint in a post-deploy
migration, and acknowledge it there::

    class Migration(migrations.Migration):
        safemigrate_phase = "post_deploy"
        safemigrate_acknowledge = {"SM209": "no code upserts on (user, plan) since release 42"}
        operations = [
            migrations.RemoveConstraint("subscription", "subscription_user_plan_uniq"),
        ]

To replace a constraint (rename it, change ``unique_together`` into a
``UniqueConstraint``), add the new one before dropping the old one, in the
same migration.

https://www.postgresql.org/docs/current/sql-insert.html#SQL-ON-CONFLICT
https://docs.djangoproject.com/en/stable/ref/models/querysets/#get-or-create
https://docs.djangoproject.com/en/stable/ref/models/querysets/#bulk-create
"""

from __future__ import annotations

import dataclasses
from collections.abc import Hashable, Iterable, Iterator
from typing import Any

from django.core.exceptions import FieldDoesNotExist
from django.db import models
from django.db.migrations import (
    AddConstraint,
    AddField,
    AlterField,
    AlterUniqueTogether,
    DeleteModel,
    RemoveConstraint,
    RemoveField,
    SeparateDatabaseAndState,
)
from django.db.migrations.state import ModelState, ProjectState
from django.db.models.options import normalize_together
from pglast import ast
from pglast.enums import AlterTableType, ConstrType, ObjectType

from django_safemigrate import djangocompat
from django_safemigrate.analysis.context import MigrationContext
from django_safemigrate.analysis.findings import Hit
from django_safemigrate.analysis.operations import database_side, state_model, state_table
from django_safemigrate.analysis.pgtree import alter_commands, relation_name
from django_safemigrate.analysis.registry import Rule
from django_safemigrate.enums import Kind, Risk
from django_safemigrate.sql import OperationSQL
from django_safemigrate.transactions import migration_in_transaction

rule = Rule(
    code="SM209",
    name="drop-unique-constraint",
    severity=Risk.DESTRUCTIVE,
    doc=__doc__,
    kinds=(Kind.BREAKS_OLD_CODE,),
)

#: PostgreSQL's NAMEDATALEN - 1: the longest identifier it keeps.
_MAX_IDENTIFIER = 63


@dataclasses.dataclass(frozen=True)
class Uniqueness:
    """What two unique constraints must share to be interchangeable for the old code."""

    table: str
    columns: frozenset[str]
    #: Condition, expressions, deferral and ``nulls_distinct`` of a ``UniqueConstraint``
    #: (``None`` for a plain one): ``ON CONFLICT`` inference and the guarantee itself
    #: depend on them too.
    shape: Hashable = None


@dataclasses.dataclass(frozen=True)
class Source:
    """One unique constraint of a table, and where it comes from."""

    key: Uniqueness
    #: For messages: ``UniqueConstraint "x"``, ``unique=True on sku``, …
    label: str
    #: Field names, for the Django code in the hint (empty for expressions).
    fields: tuple[str, ...]
    #: Names it may carry in the database, to recognise hand-written drops.
    names: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class Event:
    """A migration drops or adds a unique constraint, at ``position`` in its order."""

    position: tuple[int, int]
    dropped: bool
    source: Source
    #: For a drop: the table's other constraints with the same key just before it.
    siblings: tuple[Source, ...] = ()


@rule.on_migration
def check(ctx: MigrationContext) -> Iterator[Hit]:
    events: list[Event] = []
    removed: set[tuple[str, str | None]] = set()  # (table, column); column None: the table
    for op in ctx.operations:
        if op.from_state is None:
            continue
        events += _events(op, ctx, removed)
    # In one transaction nobody sees the moment between a drop and its replacement.
    in_transaction = migration_in_transaction(ctx.migration, ctx.connection)
    dropped = {(e.source.key, e.source.label) for e in events if e.dropped}
    for event in events:
        if not event.dropped:
            continue
        key = event.source.key
        if ctx.is_new_table(key.table) or (key.table, None) in removed:
            continue
        if any((key.table, column) in removed for column in key.columns):
            continue  # the column goes too: SM201
        kept = any((s.key, s.label) not in dropped for s in event.siblings)
        replaced = any(
            not other.dropped
            and other.source.key == key
            and (in_transaction or other.position < event.position)
            for other in events
        )
        if not kept and not replaced:
            yield _hit(event)


def _hit(event: Event) -> Hit:
    source = event.source
    table = source.key.table
    target = ", ".join(sorted(source.key.columns)) or "its expressions"
    fields = ", ".join(repr(f) for f in source.fields)
    upsert = (
        f"bulk_create(update_conflicts=True, unique_fields=[{fields}])"
        if fields
        else "bulk_create(update_conflicts=True, ...)"
    )
    return Hit(
        message=(
            f"{source.label} on {table} is dropped, and the code still running relies on it: "
            f'its INSERT … ON CONFLICT ({target}) ({upsert}, or SQL) fails with "there is no '
            'unique or exclusion constraint matching the ON CONFLICT specification", and its '
            "get_or_create/update_or_create no longer stop a concurrent duplicate (then raise "
            "MultipleObjectsReturned)."
        ),
        hint=(
            f"First deploy code that no longer relies on it (no {upsert} or ON CONFLICT "
            f"({target}); get_or_create/update_or_create on these fields replaced where "
            "duplicates may now appear); then drop it in a post-deploy migration with "
            "safemigrate_acknowledge = {'SM209': '<why>'}. To replace it with an equivalent "
            "constraint, add the new one before dropping this one, in the same migration."
        ),
        table=table,
        operation_index=event.position[0],
    )


# --------------------------------------------------------------------------------------
# What each operation drops and adds
# --------------------------------------------------------------------------------------


def _events(
    op: OperationSQL, ctx: MigrationContext, removed: set[tuple[str, str | None]]
) -> Iterator[Event]:
    assert op.from_state is not None
    app_label = str(ctx.migration.app_label)
    alias = ctx.connection.alias
    step = 0
    for inner, before in database_side(op.operation, op.from_state, app_label):
        model = _model_of(inner, before, app_label)
        if model is None or not inner.allow_migrate_model(alias, model):
            continue
        _note_removed(inner, model, removed)
        for dropped, source in _django_changes(inner, model, ctx):
            siblings = _siblings(model, source, ctx) if dropped else ()
            yield Event((op.index, step), dropped, source, siblings)
            step += 1
    for dropped, source, siblings in _handwritten_changes(op, ctx):
        yield Event((op.index, step), dropped, source, siblings)
        step += 1
    if isinstance(op.operation, SeparateDatabaseAndState):
        # The state side says what exists once the database side ran: a constraint it adds
        # was built by hand-written SQL (often concurrently, in a way not parsed here).
        state = op.from_state
        pending = list(op.operation.state_operations)
        while pending:
            inner = pending.pop(0)
            model = _model_of(inner, state, app_label) if isinstance(inner, _ADDING) else None
            if model is not None and inner.allow_migrate_model(alias, model):
                for dropped, source in _django_changes(inner, model, ctx):
                    if not dropped:
                        yield Event((op.index, step), False, source)
                        step += 1
            if any(isinstance(later, _ADDING) for later in pending):
                # Cloning a project state costs what the project holds: only when needed.
                state = state.clone()
                inner.state_forwards(app_label, state)


#: Operations that may add a unique constraint.
_ADDING = (AddConstraint, AlterUniqueTogether, AlterField, AddField)


def _model_of(operation: Any, state: ProjectState, app_label: str) -> Any:
    if isinstance(operation, DeleteModel | AlterUniqueTogether):
        return state_model(state, app_label, operation.name)
    name = getattr(operation, "model_name", None)
    if isinstance(name, str) and isinstance(
        operation, AddConstraint | RemoveConstraint | AddField | AlterField | RemoveField
    ):
        return state_model(state, app_label, name)
    return None


def _note_removed(operation: Any, model: Any, removed: set[tuple[str, str | None]]) -> None:
    table = str(model._meta.db_table)
    if isinstance(operation, DeleteModel):
        removed.add((table, None))
    elif isinstance(operation, RemoveField):
        try:
            column = model._meta.get_field(operation.name).column
        except FieldDoesNotExist:
            return
        if column:
            removed.add((table, str(column)))


def _django_changes(
    operation: Any, model: Any, ctx: MigrationContext
) -> Iterator[tuple[bool, Source]]:
    """``(dropped, source)`` for each unique constraint a Django operation drops or adds."""
    meta = model._meta
    if isinstance(operation, RemoveConstraint):
        for constraint in meta.constraints:
            if constraint.name == operation.name and isinstance(
                constraint, models.UniqueConstraint
            ):
                yield True, _constraint_source(model, constraint)
    elif isinstance(operation, AddConstraint):
        if isinstance(operation.constraint, models.UniqueConstraint):
            yield False, _constraint_source(model, operation.constraint)
    elif isinstance(operation, AlterUniqueTogether):
        old = {tuple(t) for t in meta.unique_together}
        new = {tuple(t) for t in normalize_together(operation.option_value or ())}
        for fields in sorted(old - new):
            yield True, _together_source(model, fields, ctx)
        for fields in sorted(new - old):
            yield False, _together_source(model, fields, ctx)
    elif isinstance(operation, AlterField):
        try:
            old_field = meta.get_field(operation.name)
        except FieldDoesNotExist:
            return
        # ``Field.unique`` is also true for a primary key and a OneToOneField.
        unique = operation.field.unique
        if old_field.unique and not unique and old_field.column:
            yield True, _field_source(model, old_field, ctx)
        elif unique and not old_field.unique:
            new_field = _named(operation.field, operation.name)
            if new_field.column:
                yield False, _field_source(model, new_field, ctx)
    elif isinstance(operation, AddField) and operation.field.unique:
        field = _named(operation.field, operation.name)
        if field.column:
            yield False, _field_source(model, field, ctx)


def _named(field: Any, name: str) -> Any:
    """A copy of an operation's field with its column worked out, as the model would have it."""
    copy = field.clone()
    copy.set_attributes_from_name(name)
    return copy


def _siblings(model: Any, source: Source, ctx: MigrationContext) -> tuple[Source, ...]:
    """The table's other constraints with the same key (a redundant one keeps the guarantee)."""
    return tuple(s for s in _sources(model, ctx) if s.key == source.key and s.label != source.label)


def _sources(model: Any, ctx: MigrationContext) -> Iterator[Source]:
    """Every unique constraint the model state describes."""
    meta = model._meta
    for field in meta.local_fields:
        if field.unique and field.column:
            yield _field_source(model, field, ctx)
    for fields in meta.unique_together:
        yield _together_source(model, tuple(fields), ctx)
    for constraint in meta.constraints:
        if isinstance(constraint, models.UniqueConstraint):
            yield _constraint_source(model, constraint)


def _field_source(model: Any, field: Any, ctx: MigrationContext) -> Source:
    table = str(model._meta.db_table)
    column = str(field.column)
    key = Uniqueness(table, frozenset({column}))
    if field.primary_key:
        # Created inline (``PRIMARY KEY`` in CREATE TABLE): PostgreSQL names it.
        return Source(
            key, f"the primary key {field.name}", (field.name,), (_pg_name(table, "", "pkey"),)
        )
    names = (
        # Inline ``UNIQUE`` (CreateModel, AddField): PostgreSQL's name; AlterField: Django's.
        _pg_name(table, column, "key"),
        _django_name(ctx, table, [column]),
    )
    return Source(key, f"unique=True on {field.name}", (field.name,), names)


def _together_source(model: Any, fields: tuple[str, ...], ctx: MigrationContext) -> Source:
    table = str(model._meta.db_table)
    columns = [_column(model, name) for name in fields]
    return Source(
        Uniqueness(table, frozenset(columns)),
        f"unique_together {tuple(fields)!r}",
        tuple(fields),
        (_django_name(ctx, table, columns),),
    )


def _constraint_source(model: Any, constraint: models.UniqueConstraint) -> Source:
    table = str(model._meta.db_table)
    columns = frozenset(_column(model, name) for name in constraint.fields)
    shape = (
        repr(constraint.condition) if constraint.condition is not None else None,
        tuple(repr(e) for e in constraint.expressions),
        str(constraint.deferrable) if constraint.deferrable else None,
        getattr(constraint, "nulls_distinct", None),  # Django 5.0+
    )
    return Source(
        Uniqueness(table, columns, None if shape == (None, (), None, None) else shape),
        f'UniqueConstraint "{constraint.name}"',
        tuple(constraint.fields),
        (str(constraint.name),),
    )


def _column(model: Any, name: str) -> str:
    try:
        return str(model._meta.get_field(name).column)
    except FieldDoesNotExist:
        return name


def _django_name(ctx: MigrationContext, table: str, columns: list[str]) -> str:
    """The name Django gives a unique constraint it adds with ALTER TABLE."""
    # Only the editor's naming is used: it is never entered, nothing is executed.
    editor: Any = ctx.connection.SchemaEditorClass(ctx.connection, collect_sql=True)
    return djangocompat.index_name(editor, table, columns, suffix="_uniq")


def _pg_name(table: str, columns: str, label: str) -> str:
    """The name PostgreSQL chooses for an inline constraint (``makeObjectName`` in
    src/backend/commands/indexcmds.c): ``<table>_<columns>_<label>``, both parts shortened,
    the longer first, to fit 63 bytes. A clash with an existing name would add a digit."""
    available = _MAX_IDENTIFIER - len(label) - 1 - (1 if columns else 0)
    first, second = len(table), len(columns)
    while first + second > available:
        if first > second:
            first -= 1
        else:
            second -= 1
    parts = [table[:first], columns[:second], label] if columns else [table[:first], label]
    return "_".join(parts)


# --------------------------------------------------------------------------------------
# Hand-written SQL
# --------------------------------------------------------------------------------------


def _handwritten_changes(
    op: OperationSQL, ctx: MigrationContext
) -> Iterator[tuple[bool, Source, tuple[Source, ...]]]:
    """Drops recognised by name in ``RunSQL``; unique indexes and constraints it adds on
    plain columns."""
    assert op.from_state is not None
    indexes: dict[str, Uniqueness] = {}  # unique indexes this SQL builds, by name
    for statement in op.statements:
        tree = statement.tree
        if not statement.handwritten or tree is None:
            continue
        if isinstance(tree, ast.DropStmt) and tree.removeType == ObjectType.OBJECT_INDEX:
            for obj in tree.objects or ():
                name = str(obj[-1].sval)
                yield from _known_drop(op.from_state, ctx, None, name)
        elif isinstance(tree, ast.IndexStmt) and tree.unique:
            key = _plain_index(tree)
            if key is not None:
                indexes[str(tree.idxname)] = key
                yield False, Source(key, f'unique index "{tree.idxname}"', ()), ()
        elif isinstance(tree, ast.AlterTableStmt):
            table = relation_name(tree.relation)
            if table is None:
                continue
            for cmd in alter_commands(tree):
                if cmd.subtype == AlterTableType.AT_DropConstraint and cmd.name:
                    yield from _known_drop(op.from_state, ctx, table, str(cmd.name))
                elif cmd.subtype == AlterTableType.AT_AddConstraint:
                    key = _plain_constraint(table, cmd.def_, indexes)
                    if key is not None:
                        yield False, Source(key, "a unique constraint", ()), ()


def _known_drop(
    state: ProjectState, ctx: MigrationContext, table: str | None, name: str
) -> Iterator[tuple[bool, Source, tuple[Source, ...]]]:
    """The constraint the model state knows by ``name`` (on ``table``, when given)."""
    for (app_label, model_name), model_state in state.models.items():
        if not _may_name(model_state, ctx, table, name):
            continue
        model = state_model(state, app_label, model_name)
        if model is None:
            continue
        sources = list(_sources(model, ctx))
        for source in sources:
            if name in source.names:
                siblings = tuple(
                    s for s in sources if s.key == source.key and s.label != source.label
                )
                yield True, source, siblings
                return


def _may_name(model_state: ModelState, ctx: MigrationContext, table: str | None, name: str) -> bool:
    """Whether a constraint of the model may be called ``name``, without rendering it."""
    own = state_table(model_state, ctx.connection)
    if table is not None:
        return own == table
    if any(c.name == name for c in model_state.options.get("constraints", ())):
        return True
    # Generated names begin with the table's name (Django and PostgreSQL shorten it to no
    # fewer than 23 characters).
    return name.startswith(own[:20])


def _plain_index(tree: ast.IndexStmt) -> Uniqueness | None:
    """A unique index on plain columns (no expressions, no WHERE), comparable to Django's."""
    table = relation_name(tree.relation)
    if table is None or tree.whereClause is not None or tree.nulls_not_distinct:
        return None
    columns = [elem.name for elem in tree.indexParams or () if isinstance(elem, ast.IndexElem)]
    if not columns or any(c is None for c in columns):
        return None
    return Uniqueness(table, frozenset(str(c) for c in columns))


def _plain_constraint(
    table: str, constraint: Any, indexes: dict[str, Uniqueness]
) -> Uniqueness | None:
    if not isinstance(constraint, ast.Constraint) or constraint.contype not in (
        ConstrType.CONSTR_UNIQUE,
        ConstrType.CONSTR_PRIMARY,
    ):
        return None
    if constraint.deferrable or constraint.nulls_not_distinct:
        return None
    if constraint.indexname:  # ``UNIQUE USING INDEX``: an index built in the same SQL
        return indexes.get(str(constraint.indexname))
    keys: Iterable[Any] = constraint.keys or ()
    columns = frozenset(str(k.sval) for k in keys)
    return Uniqueness(table, columns) if columns else None
