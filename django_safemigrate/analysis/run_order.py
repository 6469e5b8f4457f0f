"""One migration's statements in the order they run, each with the transaction it runs in.

A rule that looks at one statement alone misjudges what the statements before and after it
do in the same transaction:

* a lock is held until its transaction commits, so a quick ``ADD COLUMN`` (ACCESS
  EXCLUSIVE) followed by a ``CREATE INDEX`` on the same table keeps readers out for the
  whole build, and keeps any other table it locked out of reach as long
  (`RunOrder.held_before`);
* what other sessions see is the state at each commit: a column added NOT NULL whose
  default a later statement of the same transaction sets again never shows without a
  default (`RunOrder.column_defaults_at_commits`).

The transactions are Django's (:mod:`django_safemigrate.transactions`): the whole migration
when Django wraps it in one, an operation that asks for its own, one ``RunSQL`` query
string with several statements; every other statement commits on its own.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from typing import Any

from pglast import ast
from pglast.enums import AlterTableType, ConstrType, ObjectType

from django_safemigrate.analysis.pgtree import relation_name
from django_safemigrate.enums import LockMode
from django_safemigrate.execution.locks import statement_lock
from django_safemigrate.sql import OperationSQL, Statement
from django_safemigrate.transactions import Block, enclosing_block, query_string_of

_MODES = list(LockMode)


@dataclasses.dataclass(frozen=True)
class Placed:
    """A statement of the migration, where it runs."""

    #: Position in the migration's run order.
    position: int
    operation_index: int
    statement: Statement
    #: Statements with the same number run in one transaction and commit together.
    transaction: int


@dataclasses.dataclass(frozen=True)
class Held:
    """A table lock an earlier statement of the same transaction still holds."""

    table: str
    lock: LockMode
    by: Placed

    def describe(self) -> str:
        return f"{_shorten(self.by.statement.sql)} (operation {self.by.operation_index})"


@dataclasses.dataclass(frozen=True)
class ColumnAtCommit:
    """A column as other sessions see it after one commit of the migration."""

    after: Placed
    not_null: bool
    #: The column's default expression, ``None`` when it has none (or ``DEFAULT NULL``).
    default: Any | None


class RunOrder:
    """The statements of one migration, in run order, with their transactions."""

    def __init__(self, migration: Any, operations: Sequence[OperationSQL], connection: Any) -> None:
        self.placed: list[Placed] = []
        #: Tables created by the migration: nobody else uses them yet, so their locks
        #: keep nobody waiting.
        self.created = {
            name for op in operations for s in op.statements if (name := created_table(s.tree))
        }
        transaction = 0
        migration_block: int | None = None
        for op in operations:
            own: int | None = None
            batches: dict[str, int] = {}
            for statement in op.statements:
                block = enclosing_block(migration, op.operation, statement, connection)
                if block is Block.MIGRATION:
                    if migration_block is None:
                        transaction += 1
                        migration_block = transaction
                    number = migration_block
                elif block is Block.OPERATION:
                    if own is None:
                        transaction += 1
                        own = transaction
                    number = own
                elif block is Block.QUERY_STRING:
                    # One query string: PostgreSQL runs its statements as one implicit
                    # transaction block.
                    key = _batch_key(op.operation, statement)
                    if key not in batches:
                        transaction += 1
                        batches[key] = transaction
                    number = batches[key]
                else:
                    transaction += 1
                    number = transaction
                self.placed.append(Placed(len(self.placed), op.index, statement, number))
        self._positions = {(p.operation_index, id(p.statement)): p.position for p in self.placed}

    def find(self, operation_index: int, statement: Statement) -> Placed | None:
        position = self._positions.get((operation_index, id(statement)))
        return self.placed[position] if position is not None else None

    def find_sql(self, operation_index: int, sql: str) -> Placed | None:
        """The first statement of operation ``operation_index`` whose text is ``sql``."""
        for placed in self.placed:
            if placed.operation_index == operation_index and placed.statement.sql == sql:
                return placed
        return None

    def of_operation(self, operation_index: int) -> list[Placed]:
        return [p for p in self.placed if p.operation_index == operation_index]

    def held_before(self, placed: Placed) -> list[Held]:
        """Locks that keep other sessions waiting which earlier statements of ``placed``'s
        transaction took, the strongest per table (tables the migration created left out)."""
        strongest: dict[str, Held] = {}
        for earlier in self.placed[: placed.position]:
            if earlier.transaction != placed.transaction or earlier.statement.tree is None:
                continue
            for table, mode in table_locks(earlier.statement.tree):
                if table in self.created or not mode.blocks_writes:
                    continue
                known = strongest.get(table)
                if known is None or _MODES.index(mode) > _MODES.index(known.lock):
                    strongest[table] = Held(table, mode, earlier)
        return list(strongest.values())

    def column_defaults_at_commits(
        self, start: Placed, table: str, column: str
    ) -> Iterator[ColumnAtCommit]:
        """Column ``column`` of ``table`` after each commit from ``start``'s on, as other
        sessions see it: ``start`` adds it (its ``ADD COLUMN`` gives the first state) or
        changes it. Stops where a later statement drops or renames the column."""
        not_null, default = _added_column(start.statement.tree, column)
        for i in range(start.position, len(self.placed)):
            here = self.placed[i]
            if i > start.position:
                change = _column_change(here.statement.tree, table, column)
                if change is _GONE:
                    return
                if change is not None:
                    kind, value = change
                    if kind == "default":
                        default = value
                    else:
                        not_null = value
            following = self.placed[i + 1] if i + 1 < len(self.placed) else None
            if following is None or following.transaction != here.transaction:
                yield ColumnAtCommit(here, not_null, default)


def created_table(node: Any) -> str | None:
    """The table ``CREATE TABLE`` (or ``CREATE TABLE … AS``) creates."""
    if isinstance(node, ast.CreateStmt):
        return relation_name(node.relation)
    if isinstance(node, ast.CreateTableAsStmt) and node.into is not None:
        return relation_name(node.into.rel)
    return None


def _batch_key(operation: Any, statement: Statement) -> str:
    """The same value for the statements of one query string."""
    batch = query_string_of(operation, statement) or (statement,)
    return "\n".join(s.sql for s in batch)


def table_locks(node: Any) -> list[tuple[str, LockMode]]:
    """The tables ``node`` locks, with the mode, as far as the statement names them
    (``DROP INDEX`` names the index, not its table, and is left out)."""
    if isinstance(node, ast.LockStmt):
        explicit = _MODES[int(node.mode) - 1] if node.mode else LockMode.ACCESS_EXCLUSIVE
        return [(t, explicit) for t in _names(node.relations)]
    mode = statement_lock(node)
    if mode is None:
        return []
    if isinstance(node, ast.AlterTableStmt | ast.IndexStmt | ast.RenameStmt | ast.ClusterStmt):
        table = relation_name(node.relation)
        locks = [(table, mode)] if table else []
        if isinstance(node, ast.AlterTableStmt):
            locks += [(t, LockMode.SHARE_ROW_EXCLUSIVE) for t in _referenced(node)]
        return locks
    if isinstance(node, ast.TruncateStmt):
        return [(t, mode) for t in _names(node.relations)]
    if isinstance(node, ast.DropStmt) and node.removeType == ObjectType.OBJECT_TABLE:
        return [(str(names[-1].sval), mode) for names in node.objects or () if names]
    return []


def _names(relations: Any) -> list[str]:
    return [name for r in relations or () if (name := relation_name(r))]


def _referenced(node: ast.AlterTableStmt) -> list[str]:
    """Tables a foreign key added by ``node`` points at (locked SHARE ROW EXCLUSIVE)."""
    found = []
    for cmd in node.cmds or ():
        if not isinstance(cmd, ast.AlterTableCmd):
            continue
        constraints: list[Any] = []
        if cmd.subtype == AlterTableType.AT_AddConstraint:
            constraints = [cmd.def_]
        elif cmd.subtype == AlterTableType.AT_AddColumn and isinstance(cmd.def_, ast.ColumnDef):
            constraints = list(cmd.def_.constraints or ())
        for constraint in constraints:
            if (
                isinstance(constraint, ast.Constraint)
                and constraint.contype == ConstrType.CONSTR_FOREIGN
                and (name := relation_name(constraint.pktable))
            ):
                found.append(name)
    return found


_GONE = object()


def _added_column(node: Any, column: str) -> tuple[bool, Any | None]:
    """(NOT NULL, default) of ``column`` as ``node`` leaves it when it adds the column."""
    for cmd in _commands(node):
        if cmd.subtype == AlterTableType.AT_AddColumn and isinstance(cmd.def_, ast.ColumnDef):
            if cmd.def_.colname != column:
                continue
            not_null, default = False, None
            for constraint in cmd.def_.constraints or ():
                kind = getattr(constraint, "contype", None)
                if kind in {ConstrType.CONSTR_NOTNULL, ConstrType.CONSTR_PRIMARY}:
                    not_null = True
                elif kind == ConstrType.CONSTR_NULL:
                    not_null = False
                elif kind == ConstrType.CONSTR_DEFAULT:
                    default = None if is_null(constraint.raw_expr) else constraint.raw_expr
            return not_null, default
    return False, None


def _column_change(node: Any, table: str, column: str) -> Any:
    """What ``node`` does to ``column`` of ``table``: ``("default", expr | None)``,
    ``("not_null", bool)``, :data:`_GONE` when it drops or renames it, else ``None``."""
    if isinstance(node, ast.RenameStmt):
        if relation_name(node.relation) == table and node.subname == column:
            return _GONE
        return None
    if isinstance(node, ast.DropStmt) and node.removeType == ObjectType.OBJECT_TABLE:
        if any(names and str(names[-1].sval) == table for names in node.objects or ()):
            return _GONE
        return None
    if not isinstance(node, ast.AlterTableStmt) or relation_name(node.relation) != table:
        return None
    change: tuple[str, Any] | None = None
    for cmd in _commands(node):
        if cmd.name != column:
            continue
        if cmd.subtype == AlterTableType.AT_DropColumn:
            return _GONE
        if cmd.subtype == AlterTableType.AT_ColumnDefault:
            change = ("default", None if is_null(cmd.def_) else cmd.def_)
        elif cmd.subtype == AlterTableType.AT_SetNotNull:
            change = ("not_null", True)
        elif cmd.subtype == AlterTableType.AT_DropNotNull:
            change = ("not_null", False)
    return change


def _commands(node: Any) -> Iterator[ast.AlterTableCmd]:
    if isinstance(node, ast.AlterTableStmt):
        for cmd in node.cmds or ():
            if isinstance(cmd, ast.AlterTableCmd):
                yield cmd


def is_null(expr: Any) -> bool:
    """True for no expression, and for ``NULL`` (also cast: ``NULL::integer``)."""
    while isinstance(expr, ast.TypeCast):
        expr = expr.arg
    return expr is None or (isinstance(expr, ast.A_Const) and bool(expr.isnull))


def _shorten(sql: str, limit: int = 90) -> str:
    flat = " ".join(sql.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
