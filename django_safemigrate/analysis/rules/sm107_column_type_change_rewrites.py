"""Changing a column's type rewrites the whole table under an ACCESS EXCLUSIVE lock.

``ALTER TABLE … ALTER COLUMN … TYPE`` takes ACCESS EXCLUSIVE on the table and,
unless the old and new types are binary-compatible, copies every row into a new
file and rebuilds every index: reads and writes wait until the copy is done,
which on a large table takes minutes to hours. Django does this for
``AlterField`` that changes the column type (``IntegerField`` to
``BigIntegerField``, a shorter ``max_length``, ``CharField`` to ``IntegerField``,
a ``ForeignKey`` whose target's primary key type changed…).

These changes keep the table's file (checked on PostgreSQL 15 by comparing
``pg_class.relfilenode`` before and after, see the tests): ``varchar(n)`` to
``varchar(m)`` with m ≥ n, to ``varchar`` or to ``text``; ``text`` to
``varchar``; ``numeric(p, s)`` to ``numeric(p2, s)`` with p2 ≥ p, or to
``numeric``; ``bit varying(n)`` to a longer or unlimited one; a higher (or no)
precision of ``timestamp``, ``timestamptz``, ``time``, ``timetz`` and
``interval``; ``cidr`` to ``inet``; and a ``USING`` clause that is just the
column (cast to the new type). ``timestamp`` ↔ ``timestamptz`` keeps the rows
too from PostgreSQL 12 when the session time zone is UTC (Django's, with
``USE_TZ = True``), but like a change of collation it rebuilds the indexes on
the column under the lock: that is reported when the column is indexed.
Arrays (``varchar(20)[]`` to ``text[]``), ``char(n)`` in any direction,
``integer`` to ``bigint`` and any other ``USING`` expression rewrite.

Safe alternative for a large table: add a new column with the new type and
move over in steps::

    migrations.AddField(
        "order", "total_new", models.DecimalField(max_digits=14, decimal_places=2, null=True)
    )
    # the code writes both columns (or a trigger does); backfill the old rows in
    # batches from a migration with atomic = False, one transaction per batch;
    # then read the new column, and drop the old one in a later release (SM201).

Narrowing changes that can fail or lose data are also reported by SM206.
Columns of a table created in the same migration are left alone.

https://www.postgresql.org/docs/current/sql-altertable.html#SQL-ALTERTABLE-NOTES
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterator
from typing import Any

from django.db import models
from pglast import ast, parse_sql
from pglast.enums import AlterTableType
from pglast.parser import ParseError
from pglast.stream import RawStream

from django_safemigrate.analysis.context import StatementContext
from django_safemigrate.analysis.findings import Hit
from django_safemigrate.analysis.pgtree import alter_commands, relation_name
from django_safemigrate.analysis.registry import Rule
from django_safemigrate.enums import Kind, LockMode, Risk

rule = Rule(
    code="SM107",
    name="column-type-change-rewrites",
    severity=Risk.RISKY,
    doc=__doc__,
    kinds=(Kind.BLOCKS_TRAFFIC,),
)

#: How PostgreSQL spells types in messages (the parser's internal names → SQL names).
_DISPLAY = {
    "int2": "smallint",
    "int4": "integer",
    "int8": "bigint",
    "float4": "real",
    "float8": "double precision",
    "bool": "boolean",
    "bpchar": "char",
    "varbit": "bit varying",
    "timestamptz": "timestamp with time zone",
    "timetz": "time with time zone",
}
#: Types whose only modifier is a precision of fractional seconds (6 at most).
_TEMPORAL = {"timestamp", "timestamptz", "time", "timetz"}
_MAX_PRECISION = 6
#: ``interval``'s first modifier when no field range (``DAY TO SECOND``…) is given.
_INTERVAL_FULL_RANGE = 32767


@dataclasses.dataclass(frozen=True)
class ColumnType:
    """A column type as PostgreSQL's parser reads it: ``varchar(20)`` → ``varchar``, ``(20,)``."""

    name: str
    #: The integer modifiers (length, precision, scale).
    mods: tuple[int, ...] = ()
    array: bool = False
    collation: str | None = None
    #: Every modifier as SQL, integer or not (``geometry(Point, 4326)``).
    modifiers: tuple[str, ...] | None = None

    def __str__(self) -> str:
        mods: tuple[object, ...] = self.mods
        if self.name == "interval" and self.mods and self.mods[0] == _INTERVAL_FULL_RANGE:
            mods = self.mods[1:]
        elif self.modifiers is not None:
            mods = self.modifiers
        text = _DISPLAY.get(self.name, self.name)
        if mods:
            text += f"({', '.join(str(m) for m in mods)})"
        return text + ("[]" if self.array else "")

    def same_type(self, other: ColumnType) -> bool:
        def key(t: ColumnType) -> tuple[object, ...]:
            return (t.name, t.mods if t.modifiers is None else t.modifiers, t.array)

        return key(self) == key(other)


def column_type(node: ast.TypeName, collation: str | None = None) -> ColumnType:
    names = [str(n.sval).lower() for n in node.names or () if isinstance(n, ast.String)]
    name = names[-1] if names else "?"
    mods: list[int] = []
    for mod in node.typmods or ():
        value = getattr(mod, "val", None)
        if isinstance(value, ast.Integer) and value.ival is not None:
            mods.append(int(value.ival))
    modifiers = tuple(RawStream()(mod) for mod in node.typmods or ())
    return ColumnType(name, tuple(mods), bool(node.arrayBounds), collation, modifiers)


def parse_type(text: str, collation: str | None = None) -> ColumnType | None:
    """``"numeric(10, 2)"`` (as Django spells a field's type) read by PostgreSQL's parser."""
    try:
        tree = parse_sql(f"SELECT NULL::{text}")
    except ParseError:
        return None
    select = tree[0].stmt if len(tree) == 1 else None
    if not isinstance(select, ast.SelectStmt) or not select.targetList:
        return None
    target = getattr(select.targetList[0], "val", None)
    if not isinstance(target, ast.TypeCast) or target.typeName is None:
        return None
    return column_type(target.typeName, collation)


@dataclasses.dataclass(frozen=True)
class TypeChange:
    """One ``ALTER COLUMN … TYPE`` of a statement, with what was known before it."""

    table: str
    column: str
    new: ColumnType
    #: ``None`` when the column is not in the project state before the operation.
    old: ColumnType | None
    #: The ``USING`` expression when it is more than the column (cast to the new type).
    using: Any | None
    #: The model owning the column, before the operation.
    model: type[models.Model] | None
    #: The ``USING`` expression as written (``None`` without one), plain or not.
    written_using: Any | None = None


def type_changes(node: ast.AlterTableStmt, ctx: StatementContext) -> Iterator[TypeChange]:
    """The column type changes of ``node`` on a table that existed before this migration."""
    table = relation_name(node.relation)
    if table is None or ctx.migration.is_new_table(table):
        return
    model = None
    for cmd in alter_commands(node):
        definition = cmd.def_
        if (
            cmd.subtype != AlterTableType.AT_AlterColumnType
            or not isinstance(definition, ast.ColumnDef)
            or definition.typeName is None
        ):
            continue
        column = str(cmd.name)
        collation = _collation(definition.collClause)
        new = column_type(definition.typeName, collation)
        model = model or _model_of_table(table, ctx)
        old = _old_type(model, column, ctx) if model is not None else None
        written = using = definition.raw_default
        if using is not None and _is_plain_using(using, column, new):
            using = None
        yield TypeChange(table, column, new, old, using, model, written)


class Verdict(enum.Enum):
    NONE = "keeps the table"
    INDEXES = "keeps the rows but rebuilds the indexes"
    REWRITE = "rewrites the table"


def verdict(change: TypeChange, *, pg_version: int, utc: bool) -> Verdict:
    """What PostgreSQL does to the table for ``change`` (``REWRITE`` when unsure)."""
    if change.using is not None or change.old is None:
        return Verdict.REWRITE
    old, new = change.old, change.new
    if old.array or new.array:
        return Verdict.NONE if old.same_type(new) else Verdict.REWRITE
    result = _base_verdict(old, new, pg_version=pg_version, utc=utc)
    # A new collation (ALTER … TYPE without COLLATE resets it to the type's default)
    # keeps the rows and rebuilds the indexes on the column.
    if result is Verdict.NONE and old.collation != new.collation:
        return Verdict.INDEXES
    return result


def _base_verdict(old: ColumnType, new: ColumnType, *, pg_version: int, utc: bool) -> Verdict:
    binary = Verdict.NONE
    if old.same_type(new):
        return binary
    o, n = old.name, new.name
    if o in {"varchar", "text"} and n == "text":
        return binary
    if (o in {"varchar", "text"} and n == "varchar") or o == n == "varbit":
        if not new.mods:
            return binary
        if o != "text" and old.mods and new.mods[0] >= old.mods[0]:
            return binary
        return Verdict.REWRITE
    if o == n == "numeric":
        if not new.mods:
            return binary
        if old.mods and _scale(new.mods) == _scale(old.mods) and new.mods[0] >= old.mods[0]:
            return binary
        return Verdict.REWRITE
    if o in _TEMPORAL and n in _TEMPORAL:
        if not _keeps_precision(old.mods, new.mods):
            return Verdict.REWRITE
        if o == n:
            return binary
        if {o, n} == {"timestamp", "timestamptz"} and pg_version >= 12 and utc:
            # PostgreSQL 12+: the stored value is the same when the session is on UTC.
            return Verdict.INDEXES
        return Verdict.REWRITE
    if o == n == "interval":
        old_mods = old.mods or (_INTERVAL_FULL_RANGE, _MAX_PRECISION)
        if not new.mods:
            return binary
        full_range = new.mods[0] == old_mods[0] == _INTERVAL_FULL_RANGE
        precision = new.mods[-1] if len(new.mods) > 1 else _MAX_PRECISION
        old_precision = old_mods[-1] if len(old_mods) > 1 else _MAX_PRECISION
        return binary if full_range and precision >= old_precision else Verdict.REWRITE
    if (o, n) == ("cidr", "inet"):
        return binary
    return Verdict.REWRITE


def _scale(mods: tuple[int, ...]) -> int:
    return mods[1] if len(mods) > 1 else 0


def _keeps_precision(old: tuple[int, ...], new: tuple[int, ...]) -> bool:
    if not new or new[0] >= _MAX_PRECISION:
        return True
    return bool(old) and new[0] >= old[0]


@rule.on_statement(ast.AlterTableStmt)
def check(node: ast.AlterTableStmt, ctx: StatementContext) -> Iterator[Hit]:
    pg_version = ctx.migration.pg_version
    utc = _session_time_zone(ctx) == "UTC"
    for change in type_changes(node, ctx):
        result = verdict(change, pg_version=pg_version, utc=utc)
        if result is Verdict.NONE:
            continue
        if result is Verdict.INDEXES:
            if change.model is not None and not _indexed(change.model, change.column):
                continue
            yield _index_hit(change)
        else:
            yield _rewrite_hit(change)


def _rewrite_hit(change: TypeChange) -> Hit:
    table, column = change.table, change.column
    if change.old is None:
        was = (
            " (unless the change is binary-compatible, which cannot be told: the column's "
            "current type is not in the migration state)"
        )
    elif change.using is not None:
        was = f" (was {change.old}; the USING expression is computed for every row)"
    else:
        was = f" (was {change.old})"
    return Hit(
        message=(
            f"ALTER COLUMN {column} TYPE {change.new} rewrites {table}{was}: it copies every "
            "row and rebuilds every index under an ACCESS EXCLUSIVE lock, and reads and writes "
            "wait until it is done."
        ),
        hint=(
            f"Add a new column instead (AddField with the new type, null=True, e.g. "
            f'"{column}_new"), have the code write both (or a trigger), backfill the old rows in '
            "batches from a migration with atomic = False (one transaction per batch), switch "
            f"reads to the new column, and drop {column} in a later release (see SM201)."
        ),
        table=table,
        lock=LockMode.ACCESS_EXCLUSIVE,
        rewrites_table=True,
    )


def _index_hit(change: TypeChange) -> Hit:
    table, column = change.table, change.column
    assert change.old is not None  # INDEXES is only decided from a known old type
    if change.old.collation != change.new.collation:
        why = f"the collation changes from {change.old.collation or 'the default'}"
        why += f" to {change.new.collation or 'the default'}"
    else:
        why = f"{change.old} and {change.new} sort differently"
    return Hit(
        message=(
            f"ALTER COLUMN {column} TYPE {change.new} keeps the rows of {table} but, as {why}, "
            "rebuilds every index on the column under an ACCESS EXCLUSIVE lock: reads and "
            "writes wait until the indexes are built."
        ),
        hint=(
            "If the indexes are large, drop them with RemoveIndexConcurrently (DROP INDEX "
            "CONCURRENTLY) before the change and build them again with AddIndexConcurrently "
            "after it, in migrations with atomic = False (queries do without the index "
            "meanwhile)."
        ),
        table=table,
        lock=LockMode.ACCESS_EXCLUSIVE,
        rewrites_table=False,
    )


def _collation(clause: Any) -> str | None:
    if not isinstance(clause, ast.CollateClause):
        return None
    names = [str(n.sval) for n in clause.collname or () if isinstance(n, ast.String)]
    return names[-1] if names else None


def _is_plain_using(using: Any, column: str, new: ColumnType) -> bool:
    """``USING col`` or ``USING col::newtype``: what PostgreSQL does without ``USING``."""
    if isinstance(using, ast.TypeCast) and using.typeName is not None:
        if not column_type(using.typeName).same_type(new):
            return False
        using = using.arg
    if not isinstance(using, ast.ColumnRef) or not using.fields:
        return False
    last = using.fields[-1]
    return isinstance(last, ast.String) and last.sval == column


def _model_of_table(table: str, ctx: StatementContext) -> type[models.Model] | None:
    """The model whose table is ``table`` in the project state before the operation."""
    state = ctx.operation.from_state
    if state is None:
        return None
    # Almost always the operation's own model; looking at every model is the fallback.
    own = getattr(ctx.operation.operation, "model_name", None)
    if isinstance(own, str):
        model: type[models.Model] | None = ctx.operation.model_state(own)
        if model is not None and model._meta.db_table == table:
            return model
    try:
        rendered = state.apps.get_models()
    except Exception:  # a project state that does not render: the old type stays unknown
        return None
    for model in rendered:
        if model._meta.db_table == table:
            return model
    return None


def _old_type(model: type[models.Model], column: str, ctx: StatementContext) -> ColumnType | None:
    field = _field_of_column(model, column)
    if field is None:
        return None
    params = field.db_parameters(connection=ctx.migration.connection)
    text = params.get("type")
    if not text:
        return None
    collation = params.get("collation") or getattr(field, "db_collation", None)
    return parse_type(str(text), str(collation) if collation else None)


def _field_of_column(model: type[models.Model], column: str) -> models.Field[Any, Any] | None:
    for field in model._meta.concrete_fields:
        if field.column == column:
            return field
    return None


def _indexed(model: type[models.Model], column: str) -> bool:
    """Whether the state declares an index that includes ``column`` (unknown: assume so)."""
    field = _field_of_column(model, column)
    if field is None:
        return True
    if field.primary_key or field.unique or getattr(field, "db_index", False):
        return True
    meta = model._meta
    for index in meta.indexes:
        if field.name in [name.lstrip("-") for name in index.fields]:
            return True
    for constraint in meta.constraints:
        if field.name in getattr(constraint, "fields", ()):
            return True
    return any(field.name in together for together in meta.unique_together)


def _session_time_zone(ctx: StatementContext) -> str:
    """The ``TimeZone`` Django sets on its connections (``UTC`` with ``USE_TZ = True``)."""
    return str(ctx.migration.connection.timezone_name)
