"""Columns one statement assigns or declares twice: PostgreSQL rejects them before running it.

The raw parser accepts ``UPDATE t SET a = 1, a = 2``; what follows it does not. Parse
analysis refuses a column named twice in an ``INSERT`` column list (``column "a"
specified more than once``) and in the columns of a new relation (``CREATE TABLE``,
``CREATE FOREIGN TABLE``, a view, ``CREATE TABLE … AS``, ``SELECT … INTO``, a materialized
view); the rewriter refuses two assignments to one column in ``UPDATE``, ``ON CONFLICT DO
UPDATE`` and ``MERGE`` (``multiple assignments to same column "a"``); ``ALTER TABLE``
refuses to add one column twice (``column "a" of relation "t" already exists``). Each
message below is PostgreSQL's own (checked on PostgreSQL 15 in
``tests/rules/test_sm403_sql_does_not_parse.py``).

Parts of one column are not the column twice: ``SET a[1] = 1, a[2] = 2`` and ``SET
r.x = 1, r.y = 2`` are allowed; the whole column with a part of it is not.

A relation made from a query takes its column names from the select list: an
explicit alias, else a name PostgreSQL derives from the expression (a column's or a
function's name, a cast's type, ``?column?`` for an operator or a constant, …).
:func:`output_name` derives it the same way from the raw parse tree; where it cannot be
sure (``*``, functions written in SQL syntax such as ``EXTRACT``, forms it does not
know) it does not guess, and no duplicate is reported.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from pglast import ast
from pglast.enums import (
    A_Expr_Kind,
    AlterTableType,
    CmdType,
    CoercionForm,
    MinMaxOp,
    SQLValueFunctionOp,
    SubLinkType,
    XmlExprOp,
)

#: The name PostgreSQL gives a select-list expression it can name nothing better.
NAMELESS = "?column?"

#: Expressions PostgreSQL's FigureColname has no name for.
_NAMELESS_NODES = (ast.A_Const, ast.BoolExpr, ast.NullTest, ast.BooleanTest, ast.ParamRef)

#: Sublinks named after their kind; the others but EXPR have no name.
_SUBLINK_NAMES = {SubLinkType.EXISTS_SUBLINK: "exists", SubLinkType.ARRAY_SUBLINK: "array"}


def duplicate_column(node: Any) -> str | None:
    """PostgreSQL's error for the first column ``node`` assigns or declares twice, or ``None``."""
    if isinstance(node, ast.UpdateStmt):
        return _assignments(node.targetList)
    if isinstance(node, ast.InsertStmt):
        conflict = node.onConflictClause
        return _insert_columns(node.cols) or (
            _assignments(conflict.targetList) if conflict is not None else None
        )
    if isinstance(node, ast.MergeStmt):
        for clause in node.mergeWhenClauses or ():
            if clause.commandType == CmdType.CMD_UPDATE:
                found = _assignments(clause.targetList)
            elif clause.commandType == CmdType.CMD_INSERT:
                found = _insert_columns(clause.targetList)
            else:
                continue
            if found:
                return found
        return None
    if isinstance(node, ast.CreateForeignTableStmt):
        node = node.base
    if isinstance(node, ast.CreateStmt):
        names = [e.colname for e in node.tableElts or () if isinstance(e, ast.ColumnDef)]
        return _specified_twice(names)
    if isinstance(node, ast.ViewStmt):
        return _query_columns(node.aliases, node.query)
    if isinstance(node, ast.CreateTableAsStmt):
        return _query_columns(node.into.colNames if node.into else None, node.query)
    if isinstance(node, ast.SelectStmt) and node.intoClause is not None:
        return _query_columns(node.intoClause.colNames, node)
    if isinstance(node, ast.AlterTableStmt):
        return _added_twice(node)
    return None


def _assignments(targets: Sequence[ast.ResTarget] | None) -> str | None:
    """The rewriter's check of ``SET`` lists: a whole column may be assigned once, and not
    alongside assignments to its parts (``a[1]``, ``a.x``)."""
    name = _twice(targets)
    return f'multiple assignments to same column "{name}"' if name else None


def _insert_columns(targets: Sequence[ast.ResTarget] | None) -> str | None:
    """Parse analysis's check of an ``INSERT`` column list: the same rule as ``SET``."""
    name = _twice(targets)
    return f'column "{name}" specified more than once' if name else None


def _twice(targets: Sequence[ast.ResTarget] | None) -> str | None:
    whole: set[str] = set()
    parts: set[str] = set()
    for target in targets or ():
        name = str(target.name)
        if target.indirection:
            if name in whole:
                return name
            parts.add(name)
        else:
            if name in whole or name in parts:
                return name
            whole.add(name)
    return None


def _specified_twice(names: Iterable[str | None]) -> str | None:
    seen: set[str] = set()
    for name in names:
        if name is None:
            continue
        if name in seen:
            return f'column "{name}" specified more than once'
        seen.add(name)
    return None


def _added_twice(node: ast.AlterTableStmt) -> str | None:
    """``ADD COLUMN a …, ADD COLUMN a …``: the second fails, unless it says ``IF NOT EXISTS``.

    A column the statement also drops is left alone: ``ALTER TABLE`` runs its drops
    before its additions, whatever the order written.
    """
    commands = [c for c in node.cmds or () if isinstance(c, ast.AlterTableCmd)]
    dropped = {c.name for c in commands if c.subtype == AlterTableType.AT_DropColumn}
    added: set[str] = set()
    for cmd in commands:
        if cmd.subtype != AlterTableType.AT_AddColumn or not isinstance(cmd.def_, ast.ColumnDef):
            continue
        name = str(cmd.def_.colname)
        if name in dropped:
            continue
        if name in added and not cmd.missing_ok:
            table = node.relation.relname if node.relation is not None else "?"
            return f'column "{name}" of relation "{table}" already exists'
        added.add(name)
    return None


def _query_columns(aliases: Sequence[ast.String] | None, query: Any) -> str | None:
    """The columns of a relation made from ``query``, renamed by ``aliases`` in order."""
    names = output_names(query)
    if names is None:
        return None
    given = [str(a.sval) for a in aliases or ()]
    if given:
        if any(n is _STAR for n in names) or len(given) > len(names):
            # Where the select list's columns fall is not known: only the list itself.
            names = list(given)
        else:
            names = [*given, *names[len(given) :]]
    return _specified_twice(n if isinstance(n, str) else None for n in names)


class _Star:
    """Stands for a ``*`` in a select list: any number of columns, names unknown."""


_STAR: Any = _Star()


def output_names(query: Any) -> list[str | _Star | None] | None:
    """The column names of a query, by position (``None``: not known); ``None`` when the
    query is not a ``SELECT``/``VALUES`` (``EXECUTE``, …)."""
    if not isinstance(query, ast.SelectStmt):
        return None
    while query.larg is not None:  # a set operation is named by its leftmost query
        query = query.larg
    if query.valuesLists:
        first = query.valuesLists[0]
        return [f"column{i}" for i in range(1, len(first) + 1)]
    names: list[str | _Star | None] = []
    for target in query.targetList or ():
        if target.name:
            names.append(str(target.name))
        elif _is_star(target.val):
            names.append(_STAR)
        else:
            names.append(output_name(target.val))
    return names


def _is_star(node: Any) -> bool:
    if isinstance(node, ast.ColumnRef):
        parts = node.fields
    elif isinstance(node, ast.A_Indirection):
        parts = node.indirection
    else:
        return False
    return isinstance(parts[-1] if parts else None, ast.A_Star)


def output_name(node: Any) -> str | None:
    """The name PostgreSQL gives the select-list expression ``node`` (``None``: not sure)."""
    figured = _figure(node)
    if figured is None:
        return None
    name, strength = figured
    return name if strength else NAMELESS


def _figure(node: Any) -> tuple[str, int] | None:
    """(name, confidence), like PostgreSQL's FigureColname: 2 a good name, 1 a fallback (a
    cast's type, ``case``), 0 none (``?column?``); ``None`` when not sure what PostgreSQL
    would say."""
    if node is None or isinstance(node, _NAMELESS_NODES):
        return NAMELESS, 0
    if isinstance(node, ast.ColumnRef):
        fields = [str(f.sval) for f in node.fields or () if isinstance(f, ast.String)]
        return (fields[-1], 2) if fields else None
    if isinstance(node, ast.A_Indirection):
        fields = [str(i.sval) for i in node.indirection or () if isinstance(i, ast.String)]
        return (fields[-1], 2) if fields else _figure(node.arg)
    if isinstance(node, ast.FuncCall):
        # EXTRACT, TRIM, SUBSTRING … written in SQL syntax are named after the function the
        # grammar maps them to, which has changed across versions: not sure.
        if node.funcformat == CoercionForm.COERCE_SQL_SYNTAX or not node.funcname:
            return None
        return str(node.funcname[-1].sval), 2
    if isinstance(node, ast.A_Expr):
        return ("nullif", 2) if node.kind == A_Expr_Kind.AEXPR_NULLIF else (NAMELESS, 0)
    if isinstance(node, ast.TypeCast):
        inner = _figure(node.arg)
        if inner is None:
            return None
        if inner[1] <= 1 and node.typeName is not None and node.typeName.names:
            return str(node.typeName.names[-1].sval), 1
        return inner
    if isinstance(node, ast.CollateClause):
        return _figure(node.arg)
    if isinstance(node, ast.GroupingFunc):
        return "grouping", 2
    if isinstance(node, ast.SubLink):
        if node.subLinkType in _SUBLINK_NAMES:
            return _SUBLINK_NAMES[node.subLinkType], 2
        if node.subLinkType == SubLinkType.EXPR_SUBLINK:
            # The name of the subquery's first column, whatever it is.
            names = output_names(node.subselect)
            first = names[0] if names else None
            return (first, 2) if isinstance(first, str) else None
        return NAMELESS, 0
    if isinstance(node, ast.CaseExpr):
        inner = _figure(node.defresult)
        if inner is None:
            return None
        return ("case", 1) if inner[1] <= 1 else inner
    if isinstance(node, ast.A_ArrayExpr):
        return "array", 2
    if isinstance(node, ast.RowExpr):
        return "row", 2
    if isinstance(node, ast.CoalesceExpr):
        return "coalesce", 2
    if isinstance(node, ast.MinMaxExpr):
        return ("greatest" if node.op == MinMaxOp.IS_GREATEST else "least"), 2
    if isinstance(node, ast.SQLValueFunction) and node.op is not None:
        # SVFOP_CURRENT_TIMESTAMP_N → current_timestamp
        op = SQLValueFunctionOp(node.op).name
        return op.removeprefix("SVFOP_").removesuffix("_N").lower(), 2
    if isinstance(node, ast.XmlExpr) and node.op is not None:
        if node.op == XmlExprOp.IS_DOCUMENT:
            return NAMELESS, 0
        return XmlExprOp(node.op).name.removeprefix("IS_").lower(), 2
    if isinstance(node, ast.XmlSerialize):
        return "xmlserialize", 2
    return None
