"""A squawk fixture as Django migrations: a setup migration, then the fixture's SQL in RunSQL.

squawk judges a SQL file; ``checkmigrations`` judges migrations. The fixture becomes:

- ``0001_setup``: creates the tables (and schemas, and indexes named by ``DROP INDEX`` or
  ``REINDEX INDEX``) that the fixture uses without creating them, so that they exist on the
  database before the fixture runs, as they would in production. A column the fixture
  names on such a table is created as ``integer`` (the fixture does not say what it was);
  a table whose columns the fixture never names gets an ``id integer``. This migration is
  applied before ``checkmigrations`` runs; the fixture itself is never executed.
- ``0002_…`` onwards: the fixture's statements, in order, as one ``RunSQL`` per migration.
  Each top-level ``BEGIN; … COMMIT;`` block becomes an atomic migration without its
  ``BEGIN`` and ``COMMIT`` (Django opens and commits that transaction itself); statements
  outside a block become a migration with ``atomic = False`` (each statement commits on
  its own, as squawk assumes by default), or an atomic one when the test sets
  ``assume_in_transaction``. A fixture whose transaction control does not pair up
  (a ``COMMIT`` first, nesting, ``ROLLBACK``, ``SAVEPOINT``, a block left open) is kept
  whole, verbatim, in one ``RunSQL``: its transaction control is what it is about.

The statements are read with PostgreSQL's parser (pglast); the SQL text given to
``RunSQL`` is the fixture's own, sliced at the statement boundaries the parser reports.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

from pglast import ast, parser
from pglast.enums import AlterTableType, ObjectType, ReindexObjectType, TransactionStmtKind

OPENS = {TransactionStmtKind.TRANS_STMT_BEGIN, TransactionStmtKind.TRANS_STMT_START}
CLOSES = {TransactionStmtKind.TRANS_STMT_COMMIT}
#: Subcommands of ALTER TABLE whose ``name`` is a column of the table.
COLUMN_COMMANDS = {
    AlterTableType.AT_AlterColumnType,
    AlterTableType.AT_ColumnDefault,
    AlterTableType.AT_DropNotNull,
    AlterTableType.AT_SetNotNull,
    AlterTableType.AT_DropColumn,
    AlterTableType.AT_SetStatistics,
    AlterTableType.AT_SetStorage,
    AlterTableType.AT_AddIdentity,
    AlterTableType.AT_DropIdentity,
    AlterTableType.AT_SetIdentity,
    AlterTableType.AT_DropExpression,
    AlterTableType.AT_SetCompression,
}


@dataclasses.dataclass(frozen=True)
class Segment:
    """The SQL of one wrapped migration."""

    sql: str
    atomic: bool


@dataclasses.dataclass(frozen=True)
class Wrapped:
    """A fixture as migrations: what to create first, then the segments."""

    setup_sql: str
    segments: tuple[Segment, ...]
    #: Every relation name the fixture uses or creates (``schema.name`` when qualified
    #: by another schema than ``public``): fixtures sharing one must not share a database.
    tables: frozenset[str]
    #: The fixture could not be parsed: kept whole (``checkmigrations`` reports SM403).
    unparsable: str | None = None


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def qualified(schema: str | None, name: str) -> str:
    return f"{quote(schema)}.{quote(name)}" if schema else quote(name)


def _walk(node: Any) -> Iterator[Any]:
    """Every pglast node below ``node`` (itself included)."""
    if isinstance(node, ast.Node):
        yield node
        for field in node:
            yield from _walk(getattr(node, field))
    elif isinstance(node, tuple | list):
        for item in node:
            yield from _walk(item)


def _key(var: ast.RangeVar) -> tuple[str | None, str]:
    """A relation's schema (``None`` for the default one) and name."""
    schema = var.schemaname if var.schemaname != "public" else None
    return schema, var.relname


def _strings(items: Any) -> list[str]:
    return [item.sval for item in items or () if isinstance(item, ast.String)]


def _slices(sql: str) -> list[tuple[Any, str]]:
    """Each statement's parse tree with its own text (pglast gives character offsets)."""
    out = []
    for raw in parser.parse_sql(sql):
        start = raw.stmt_location
        end = len(sql) if not raw.stmt_len else start + raw.stmt_len
        out.append((raw.stmt, sql[start:end].strip()))
    return out


def segments(sql: str, *, assume_in_transaction: bool) -> tuple[Segment, ...]:
    """The fixture split into migrations at its transaction blocks (see the module doc)."""
    statements = _slices(sql)
    result: list[Segment] = []
    current: list[str] = []
    in_block = False
    for stmt, text in statements:
        if isinstance(stmt, ast.TransactionStmt):
            if stmt.kind in OPENS and not in_block:
                if current:
                    result.append(Segment(_join(current), atomic=assume_in_transaction))
                current, in_block = [], True
                continue
            if stmt.kind in CLOSES and in_block:
                if current:
                    result.append(Segment(_join(current), atomic=True))
                current, in_block = [], False
                continue
            return (Segment(sql.strip(), atomic=assume_in_transaction),)
        current.append(text)
    if in_block:
        return (Segment(sql.strip(), atomic=assume_in_transaction),)
    if current:
        result.append(Segment(_join(current), atomic=assume_in_transaction))
    return tuple(result)


def _join(statements: list[str]) -> str:
    return "\n".join(s if s.endswith(";") else s + ";" for s in statements)


@dataclasses.dataclass
class _Needs:
    tables: dict[tuple[str | None, str], set[str]] = dataclasses.field(default_factory=dict)
    created: set[tuple[str | None, str]] = dataclasses.field(default_factory=set)
    added_columns: set[tuple[tuple[str | None, str], str]] = dataclasses.field(default_factory=set)
    indexes: dict[tuple[str | None, str], None] = dataclasses.field(default_factory=dict)
    created_indexes: set[str] = dataclasses.field(default_factory=set)

    def table(self, var: ast.RangeVar) -> tuple[str | None, str] | None:
        return self.table_key(_key(var))

    def table_key(self, key: tuple[str | None, str]) -> tuple[str | None, str] | None:
        if key in self.created:
            return None
        self.tables.setdefault(key, set())
        return key

    def column(self, key: tuple[str | None, str] | None, name: str | None) -> None:
        if key is not None and name and (key, name) not in self.added_columns:
            self.tables[key].add(name)


def _statement_needs(stmt: Any, needs: _Needs) -> None:  # noqa: PLR0915 - one branch per kind
    """Record what ``stmt`` uses that must already exist."""
    if isinstance(stmt, ast.CreateStmt | ast.CreateTableAsStmt | ast.ViewStmt):
        if isinstance(stmt, ast.ViewStmt):
            target = stmt.view
        elif isinstance(stmt, ast.CreateTableAsStmt):
            target = stmt.into.rel
        else:
            target = stmt.relation
        needs.created.add(_key(target))
        query = getattr(stmt, "query", None)
        for node in _walk(query):
            if isinstance(node, ast.RangeVar):
                needs.table(node)
        for node in _walk(stmt):
            if isinstance(node, ast.Constraint) and node.pktable is not None:
                ref = needs.table(node.pktable)
                for col in _strings(node.pk_attrs):
                    needs.column(ref, col)
            if isinstance(node, ast.CreateStmt) and node.inhRelations:
                for parent in node.inhRelations:
                    needs.table(parent)
            if isinstance(node, ast.CreateStmt) and node.partbound is not None:
                for parent in node.inhRelations or ():
                    needs.table(parent)
        return
    if isinstance(stmt, ast.IndexStmt) and stmt.idxname:
        needs.created_indexes.add(stmt.idxname)
    if isinstance(stmt, ast.DropStmt) and stmt.removeType == ObjectType.OBJECT_INDEX:
        for names in stmt.objects or ():
            parts = _strings(names)
            schema, name = (parts[0], parts[1]) if len(parts) == 2 else (None, parts[-1])
            if name not in needs.created_indexes:
                needs.indexes[(schema, name)] = None
        return
    if isinstance(stmt, ast.DropStmt) and stmt.removeType == ObjectType.OBJECT_TABLE:
        for names in stmt.objects or ():
            parts = _strings(names)
            schema = parts[0] if len(parts) == 2 and parts[0] != "public" else None
            needs.table_key((schema, parts[-1]))
        return
    if isinstance(stmt, ast.ReindexStmt) and stmt.kind == ReindexObjectType.REINDEX_OBJECT_INDEX:
        var = stmt.relation
        if var.relname not in needs.created_indexes:
            needs.indexes[(var.schemaname, var.relname)] = None
        return
    if isinstance(stmt, ast.AlterTableStmt) and stmt.objtype == ObjectType.OBJECT_INDEX:
        var = stmt.relation
        if var.relname not in needs.created_indexes:
            needs.indexes[(var.schemaname, var.relname)] = None
        return
    primary = None
    for field in ("relation",):
        var = getattr(stmt, field, None)
        if isinstance(var, ast.RangeVar):
            primary = needs.table(var)
    if isinstance(stmt, ast.AlterTableStmt):
        for cmd in stmt.cmds or ():
            if cmd.subtype == AlterTableType.AT_AddColumn and isinstance(cmd.def_, ast.ColumnDef):
                needs.added_columns.add((_key(stmt.relation), cmd.def_.colname))
            elif cmd.subtype in COLUMN_COMMANDS:
                needs.column(primary, cmd.name)
    if isinstance(stmt, ast.RenameStmt) and stmt.renameType == ObjectType.OBJECT_COLUMN:
        needs.column(primary, stmt.subname)
    for node in _walk(stmt):
        if isinstance(node, ast.RangeVar) and node is not getattr(stmt, "relation", None):
            needs.table(node)
        elif isinstance(node, ast.Constraint):
            for col in _strings(node.keys) + _strings(node.fk_attrs):
                needs.column(primary, col)
            if node.pktable is not None:
                ref = needs.table(node.pktable)
                for col in _strings(node.pk_attrs):
                    needs.column(ref, col)
        elif isinstance(node, ast.IndexElem) and node.name:
            needs.column(primary, node.name)
        elif isinstance(node, ast.ColumnRef):
            fields = _strings(node.fields)
            if len(fields) == 1:
                needs.column(primary, fields[0])
        elif (
            isinstance(node, ast.ResTarget)
            and node.name
            and isinstance(stmt, ast.UpdateStmt | ast.InsertStmt)
        ):
            needs.column(primary, node.name)


def setup_sql(needs: _Needs) -> str:
    """CREATE statements for every table and index the fixture uses without creating."""
    lines: list[str] = []
    schemas = sorted(
        {s for s, _ in needs.tables if s}
        | {s for s, _ in needs.indexes if s} - {"public", "pg_catalog"}
    )
    lines += [f"CREATE SCHEMA IF NOT EXISTS {quote(s)};" for s in schemas]
    for (schema, name), columns in sorted(needs.tables.items(), key=lambda kv: str(kv[0])):
        if schema == "pg_catalog":
            continue
        cols = sorted(columns) or ["id"]
        body = ", ".join(f"{quote(c)} integer" for c in cols)
        lines.append(f"CREATE TABLE {qualified(schema, name)} ({body});")
    for schema, name in needs.indexes:
        holder = f"{name}_table"[:63]
        lines.append(f"CREATE TABLE {qualified(schema, holder)} (id integer);")
        lines.append(f"CREATE INDEX {quote(name)} ON {qualified(schema, holder)} (id);")
    return "\n".join(lines)


def wrap(sql: str, *, assume_in_transaction: bool) -> Wrapped:
    """The fixture as a setup and RunSQL segments; kept whole when it does not parse."""
    try:
        statements = _slices(sql)
    except parser.ParseError as exc:
        return Wrapped(
            setup_sql="",
            segments=(Segment(sql.strip(), atomic=assume_in_transaction),),
            tables=frozenset(),
            unparsable=str(exc),
        )
    needs = _Needs()
    for stmt, _text in statements:
        _statement_needs(stmt, needs)
    used = set(needs.tables) | set(needs.indexes) | needs.created
    for stmt, _text in statements:
        for node in _walk(stmt):
            if isinstance(node, ast.RangeVar):
                used.add(_key(node))
            elif isinstance(node, ast.IndexStmt) and node.idxname:
                used.add((_key(node.relation)[0], node.idxname))
    names = {f"{s}.{n}" if s else n for s, n in used}
    return Wrapped(
        setup_sql=setup_sql(needs),
        segments=segments(sql, assume_in_transaction=assume_in_transaction),
        tables=frozenset(names),
    )
