"""How many rows an UPDATE's or DELETE's WHERE lets through, of the table it writes.

Only what bounds the rows by key counts: equalities, lists and short ranges on a key,
subqueries with ``LIMIT``, joins with bounded ``FROM`` items (see the rule's documentation).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator, Mapping
from typing import Any

from pglast import ast
from pglast.enums import A_Expr_Kind, BoolExprType, LimitOption, SetOperation, SubLinkType
from pglast.stream import RawStream

from django_safemigrate.analysis.rules.sm207_whole_table_update_or_delete.keys import Table

#: The ``WITH`` queries a statement sees, by name, with whether their clause is RECURSIVE.
Ctes = Mapping[str, tuple[ast.CommonTableExpr, bool]]


def with_queries(node: Any, ctes: Ctes) -> Ctes:
    """``ctes`` and the queries of ``node``'s own ``WITH`` clause, by name."""
    with_clause = getattr(node, "withClause", None)
    if with_clause is None:
        return ctes
    found = {
        str(cte.ctename): (cte, bool(with_clause.recursive))
        for cte in with_clause.ctes or ()
        if isinstance(cte, ast.CommonTableExpr) and cte.ctename
    }
    return {**ctes, **found} if found else ctes


@dataclasses.dataclass(frozen=True)
class Target:
    """The table an UPDATE or DELETE writes, and what its WHERE can refer to."""

    table: Table
    #: The qualifier of the table's columns: its alias, or its name.
    qualifier: str
    #: ``WITH`` queries the statement sees.
    ctes: Ctes
    #: ``FROM`` / ``USING`` items, by name, with their most rows (``None``: unbounded).
    sources: Mapping[str, int | None]
    #: The ``FROM`` / ``USING`` items as SQL (``other AS o``).
    joined: str

    @classmethod
    def of(cls, stmt: Any, table: str, known: Table, ctes: Ctes) -> Target:
        ctes = with_queries(stmt, ctes)
        alias = stmt.relation.alias
        qualifier = str(alias.aliasname) if alias is not None else table
        items = stmt.fromClause if isinstance(stmt, ast.UpdateStmt) else stmt.usingClause
        sources: dict[str, int | None] = {}
        for item in items or ():
            if isinstance(item, ast.RangeVar):
                name = str(item.alias.aliasname) if item.alias else str(item.relname)
                cte = ctes.get(str(item.relname)) if not item.schemaname else None
                sources[name] = _select_rows(cte[0].ctequery, ctes, set()) if cte else None
            elif isinstance(item, ast.RangeSubselect) and item.alias is not None:
                sources[str(item.alias.aliasname)] = _select_rows(item.subquery, ctes, set())
            else:
                sources[f"<join {len(sources)}>"] = None
        joined = ", ".join(deparse(item) for item in items or ())
        return cls(table=known, qualifier=qualifier, ctes=ctes, sources=sources, joined=joined)

    def column(self, node: Any) -> str | None:
        """The target's column ``node`` names (an unqualified name counts as the target's)."""
        if not isinstance(node, ast.ColumnRef) or not node.fields:
            return None
        names = [f.sval for f in node.fields if isinstance(f, ast.String)]
        if len(names) != len(node.fields):
            return None  # t.*
        if len(names) > 1 and names[-2] != self.qualifier:
            return None
        return str(names[-1])

    def source_rows(self, node: Any) -> int | None:
        """The most rows of the ``FROM`` / ``USING`` item whose column ``node`` is."""
        if not isinstance(node, ast.ColumnRef) or not node.fields or len(node.fields) < 2:
            return None
        qualifier = node.fields[-2]
        if not isinstance(qualifier, ast.String) or qualifier.sval == self.qualifier:
            return None
        return self.sources.get(str(qualifier.sval))


def most_rows(expr: Any, target: Target) -> int | None:
    """The most rows of the target ``expr`` lets through; ``None`` when it does not bound them."""
    if isinstance(expr, ast.BoolExpr):
        if expr.boolop == BoolExprType.OR_EXPR:
            counts = [most_rows(arg, target) for arg in expr.args or ()]
            return None if None in counts else sum(c for c in counts if c is not None)
        if expr.boolop == BoolExprType.AND_EXPR:
            return _conjunction(list(_terms(expr)), target)
        return None  # NOT: what a bounded filter leaves out is unbounded
    if isinstance(expr, ast.A_Const):
        # WHERE false (or NULL) matches nothing; WHERE true everything.
        is_false = isinstance(expr.val, ast.Boolean) and not expr.val.boolval
        return 0 if expr.isnull or is_false else None
    if isinstance(expr, ast.CurrentOfExpr):
        return 1  # WHERE CURRENT OF cursor: the row the cursor is on
    return _conjunction([expr], target)


def _terms(expr: Any) -> Iterator[Any]:
    if isinstance(expr, ast.BoolExpr) and expr.boolop == BoolExprType.AND_EXPR:
        for arg in expr.args or ():
            yield from _terms(arg)
    else:
        yield expr


def _conjunction(terms: list[Any], target: Target) -> int | None:
    """An AND: bounded by its most bounding term, or by terms that together fix a key."""
    best: int | None = None
    # Columns -> the most distinct combinations of their values the terms let through
    # (``(a, b) IN ((1, 2), (3, 4))``: 2 for a and b together, not 2 times 2).
    fixed: dict[frozenset[str], int] = {}
    ranges: dict[str, tuple[float, float]] = {}
    for term in terms:
        if isinstance(term, ast.BoolExpr | ast.A_Const | ast.CurrentOfExpr):
            best = _least(best, most_rows(term, target))
            continue
        for columns, count in _fixes(term, target):
            fixed[columns] = min(fixed.get(columns, count), count)
        for column, low, high in _ranges(term, target):
            was = ranges.get(column, (-math.inf, math.inf))
            ranges[column] = (max(was[0], low), min(was[1], high))
    for column, (low, high) in ranges.items():
        if math.isfinite(low) and math.isfinite(high):
            width = max(0, int(high - low) + 1)
            fixed[frozenset({column})] = min(fixed.get(frozenset({column}), width), width)
    for key in target.table.keys:
        for columns, count in fixed.items():
            if key <= columns:
                best = _least(best, count)
        each = [min((n for cs, n in fixed.items() if column in cs), default=None) for column in key]
        if None not in each:
            best = _least(best, math.prod(n for n in each if n is not None))
    return best


def _least(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else min(a, b)


def _fixes(term: Any, target: Target) -> Iterator[tuple[frozenset[str], int]]:
    """Columns of the target ``term`` restricts to a known number of (combined) values."""
    if isinstance(term, ast.A_Expr) and operator_name(term) == "=":
        if term.kind == A_Expr_Kind.AEXPR_OP:
            for column, count in (
                *_equalities(term.lexpr, term.rexpr, target),
                *_equalities(term.rexpr, term.lexpr, target),
            ):
                yield frozenset({column}), count
        elif term.kind == A_Expr_Kind.AEXPR_IN:
            values = list(term.rexpr or ())
            listed = frozenset(
                column
                for position, column in _columns(term.lexpr, target)
                if all(_is_value(_nth(value, position), target) for value in values)
            )
            if listed:
                yield listed, len(values)
        elif term.kind == A_Expr_Kind.AEXPR_OP_ANY:
            single = target.column(term.lexpr)
            elements = _array_length(term.rexpr, target)
            if single is not None and elements is not None:
                yield frozenset({single}), elements
    elif (
        isinstance(term, ast.SubLink)
        and term.subLinkType == SubLinkType.ANY_SUBLINK
        and operator_name(term) in {None, "="}
    ):
        rows = _select_rows(term.subselect, target.ctes, set())
        tested = frozenset(column for _, column in _columns(term.testexpr, target))
        if rows is not None and tested:
            yield tested, rows


def _equalities(side: Any, other: Any, target: Target) -> Iterator[tuple[str, int]]:
    """``column = value`` (or ``(a, b) = (1, 2)``) with the target's columns on ``side``."""
    if isinstance(side, ast.RowExpr) and isinstance(other, ast.RowExpr):
        for left, right in zip(side.args or (), other.args or (), strict=False):
            yield from _equalities(left, right, target)
        return
    column = target.column(side)
    if column is None:
        return
    if _is_value(other, target):
        yield column, 1
    elif (rows := target.source_rows(other)) is not None:
        # A join on the key with a bounded FROM item: one target row per row of it.
        yield column, rows


def _columns(node: Any, target: Target) -> Iterator[tuple[int | None, str]]:
    """The target columns of ``node`` (a column, or a row of them) with their positions."""
    if isinstance(node, ast.RowExpr):
        for position, arg in enumerate(node.args or ()):
            column = target.column(arg)
            if column is not None:
                yield position, column
    elif (column := target.column(node)) is not None:
        yield None, column


def _nth(value: Any, position: int | None) -> Any:
    if position is None:
        return value
    args = value.args if isinstance(value, ast.RowExpr) else None
    return args[position] if args and position < len(args) else None


def _ranges(term: Any, target: Target) -> Iterator[tuple[str, float, float]]:
    """``(column, low, high)``: integer bounds ``term`` puts on a target column."""
    if not isinstance(term, ast.A_Expr):
        return
    if term.kind == A_Expr_Kind.AEXPR_OP:
        op = operator_name(term)
        flipped = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "=": "="}
        for column_side, value_side, operator in (
            (term.lexpr, term.rexpr, op),
            (term.rexpr, term.lexpr, flipped.get(op or "")),
        ):
            column, value = target.column(column_side), _integer(value_side)
            if column is None or value is None:
                continue
            if operator == ">":
                yield column, value + 1, math.inf
            elif operator == ">=":
                yield column, value, math.inf
            elif operator == "<":
                yield column, -math.inf, value - 1
            elif operator == "<=":
                yield column, -math.inf, value
    elif term.kind in {A_Expr_Kind.AEXPR_BETWEEN, A_Expr_Kind.AEXPR_BETWEEN_SYM}:
        column = target.column(term.lexpr)
        ends = [_integer(end) for end in term.rexpr or ()]
        if column is not None and len(ends) == 2 and None not in ends:
            low, high = (end or 0 for end in ends)
            if term.kind == A_Expr_Kind.AEXPR_BETWEEN_SYM:
                low, high = min(low, high), max(low, high)
            yield column, low, high


def operator_name(node: Any) -> str | None:
    names = node.name if isinstance(node, ast.A_Expr) else node.operName
    if not names:
        return None
    last = names[-1]
    return str(last.sval) if isinstance(last, ast.String) else None


def _integer(node: Any) -> int | None:
    if isinstance(node, ast.TypeCast):
        node = node.arg
    if not isinstance(node, ast.A_Const) or node.isnull:
        return None
    if isinstance(node.val, ast.Integer):
        return int(node.val.ival or 0)
    if isinstance(node.val, ast.Float) and str(node.val.fval).lstrip("-").isdigit():
        return int(str(node.val.fval))  # an integer too large for int4
    return None


def _is_value(node: Any, target: Target) -> bool:
    """Whether ``node`` is one value for the whole statement (no column of any row in it).

    Subqueries are values unless they name the target's qualifier (a correlated subquery
    gives each row its own value). An unqualified column inside a subquery is taken as the
    subquery's own.
    """
    if node is None:
        return False
    for ref, in_subquery in column_refs(node):
        if not in_subquery:
            return False
        names = [f.sval for f in ref.fields or () if isinstance(f, ast.String)]
        if len(names) > 1 and names[-2] == target.qualifier:
            return False
    return True


def column_refs(node: Any) -> Iterator[tuple[ast.ColumnRef, bool]]:
    """Every column reference in ``node``, and whether it is inside a subquery."""
    for found, in_subquery in walk(node, False):
        if isinstance(found, ast.ColumnRef):
            yield found, in_subquery


def walk(node: Any, in_subquery: bool) -> Iterator[tuple[Any, bool]]:
    """Every node of ``node``'s tree, and whether it is inside a subquery."""
    if isinstance(node, tuple | list):
        for item in node:
            yield from walk(item, in_subquery)
        return
    if not isinstance(node, ast.Node):
        return
    yield node, in_subquery
    if isinstance(node, ast.SubLink):
        # The tested expression (id of "id IN (SELECT …)") is outside the subquery.
        yield from walk(node.testexpr, in_subquery)
        yield from walk(node.subselect, True)
        return
    inner = in_subquery or isinstance(node, ast.SelectStmt)
    for slot in getattr(type(node), "__slots__", ()):
        value = getattr(node, slot, None)
        if isinstance(value, ast.Node | tuple | list):
            yield from walk(value, inner)


def _array_length(node: Any, target: Target) -> int | None:
    """Elements of the array of ``key = ANY(array)``; ``None`` when unknown or per row."""
    if isinstance(node, ast.A_ArrayExpr):
        elements = node.elements or ()
        return len(elements) if all(_is_value(e, target) for e in elements) else None
    if isinstance(node, ast.SubLink) and node.subLinkType == SubLinkType.ARRAY_SUBLINK:
        return _select_rows(node.subselect, target.ctes, set())
    if isinstance(node, ast.TypeCast):
        node = node.arg
    if isinstance(node, ast.A_Const) and isinstance(node.val, ast.String):
        # An array literal, as a list parameter is sent: '{1,2,3}'.
        text = str(node.val.sval).strip()
        if not (text.startswith("{") and text.endswith("}")):
            return None
        inner = text[1:-1].strip()
        if any(mark in inner for mark in '{}"\\'):
            return None
        return len(inner.split(",")) if inner else 0
    return None


def _select_rows(node: Any, ctes: Ctes, seen: set[str]) -> int | None:
    """The most rows a query returns, when ``LIMIT`` or a ``VALUES`` list bounds them."""
    if not isinstance(node, ast.SelectStmt):
        return None
    ctes = with_queries(node, ctes)
    best: int | None = None
    if node.limitOption == LimitOption.LIMIT_OPTION_COUNT:
        # WITH TIES may return more rows than the count.
        limit = _integer(node.limitCount)
        if limit is not None:
            best = max(0, limit)
    if node.valuesLists:
        best = _least(best, len(node.valuesLists))
    if node.op == SetOperation.SETOP_UNION:
        left = _select_rows(node.larg, ctes, seen)
        right = _select_rows(node.rarg, ctes, seen)
        if left is not None and right is not None:
            best = _least(best, left + right)
    elif node.op == SetOperation.SETOP_INTERSECT:
        best = _least(
            best,
            _least(_select_rows(node.larg, ctes, seen), _select_rows(node.rarg, ctes, seen)),
        )
    elif node.op == SetOperation.SETOP_EXCEPT:
        best = _least(best, _select_rows(node.larg, ctes, seen))
    elif _passes_rows_through(node):
        items = node.fromClause or ()
        if not items and not node.valuesLists:
            best = _least(best, 1)  # SELECT 5
        elif len(items) == 1:
            item = items[0]
            if isinstance(item, ast.RangeVar) and not item.schemaname:
                name = str(item.relname)
                if name in ctes and name not in seen:
                    query = ctes[name][0].ctequery
                    best = _least(best, _select_rows(query, ctes, seen | {name}))
            elif isinstance(item, ast.RangeSubselect):
                best = _least(best, _select_rows(item.subquery, ctes, seen))
    return best


def _passes_rows_through(node: ast.SelectStmt) -> bool:
    """A select list of plain columns and constants returns at most a row per row read.

    A set-returning function in it (``unnest(ids)``) could return more.
    """
    for target in node.targetList or ():
        value = target.val if isinstance(target, ast.ResTarget) else None
        if isinstance(value, ast.TypeCast):
            value = value.arg
        if not isinstance(value, ast.ColumnRef | ast.A_Const):
            return False
    return True


def deparse(node: Any) -> str:
    return str(RawStream()(node))
