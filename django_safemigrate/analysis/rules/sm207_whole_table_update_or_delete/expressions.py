"""Writes parts of an UPDATE as the Django expressions a ``Backfill`` takes."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator, Mapping
from typing import Any

from pglast import ast
from pglast.enums import A_Expr_Kind, BoolExprType, NullTestType

from django_safemigrate.analysis.rules.sm207_whole_table_update_or_delete.bounds import (
    Target,
    column_refs,
    deparse,
    operator_name,
    walk,
)


class Expressions:
    """Writes parts of an UPDATE as the Django expressions a ``Backfill`` takes.

    What has a lookup or a plain value is written as one (``Q(flag__isnull=True)``, ``0``,
    ``F("price")``); other SQL goes in ``RawSQL``; what refers to other tables (a join)
    becomes ``...`` for the author to write.
    """

    def __init__(self, target: Target, fields: Mapping[str, str]) -> None:
        self.target = target
        self.fields = fields
        self.names: set[str] = {"from django_safemigrate import Backfill"}
        #: What a "..." in the expressions stands for ("-": SQL with no Django expression).
        self.elided = ""

    def imports(self) -> list[str]:
        models = sorted(n.split(" import ")[1] for n in self.names if "models import" in n)
        found = [n for n in self.names if "models import" not in n]
        if models:
            found.append(f"from django.db.models import {', '.join(models)}")
        return sorted(found)

    def field(self, column: str) -> str:
        return self.fields.get(column, column)

    def assignments(self, stmt: ast.UpdateStmt) -> Iterator[tuple[str, str]]:
        for item in stmt.targetList or ():
            value = item.val
            if isinstance(value, ast.MultiAssignRef):
                source = value.source
                args = source.args if isinstance(source, ast.RowExpr) else None
                value = args[(value.colno or 1) - 1] if args else None
            if item.indirection or value is None or isinstance(value, ast.SetToDefault):
                self.elided = self.elided or "-"
                yield str(item.name), "..."
            else:
                yield str(item.name), self.value(value)

    def value(self, node: Any) -> str:
        if self._foreign(node):
            return "..."
        constant = _python_constant(node)
        if constant is not None:
            return constant
        column = self.target.column(node)
        if column is not None and column in self.fields:
            self.names.add("from django.db.models import F")
            return f'F("{self.fields[column]}")'
        return self._raw(node, condition=False)

    def condition(self, node: Any, top: bool = False) -> str:
        if self._foreign(node):
            return "..."
        written = self._lookup(node)
        if written is not None:
            self.names.add("from django.db.models import Q")
            return written
        if isinstance(node, ast.BoolExpr) and node.boolop != BoolExprType.NOT_EXPR:
            joiner = " & " if node.boolop == BoolExprType.AND_EXPR else " | "
            parts = [self.condition(arg) for arg in node.args or ()]
            joined = joiner.join(parts)
            return joined if top else f"({joined})"
        self.names.add("from django.db.models import Q")
        return f"Q({self._raw(node, condition=True)})"

    def _lookup(self, node: Any) -> str | None:
        """``node`` as one ``Q(field__lookup=value)``, when it means exactly that in SQL."""
        if isinstance(node, ast.BoolExpr) and node.boolop == BoolExprType.NOT_EXPR:
            inner = node.args[0] if node.args else None
            if isinstance(inner, ast.NullTest):
                column = self._field_of(inner.arg)
                if column is not None:
                    return f"Q({column}__isnull={inner.nulltesttype != NullTestType.IS_NULL})"
            return None
        if isinstance(node, ast.NullTest):
            column = self._field_of(node.arg)
            if column is not None:
                return f"Q({column}__isnull={node.nulltesttype == NullTestType.IS_NULL})"
            return None
        if not isinstance(node, ast.A_Expr):
            return None
        op = operator_name(node)
        lookups = {"=": "", "<": "__lt", "<=": "__lte", ">": "__gt", ">=": "__gte"}
        flipped = {"=": "=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}
        if node.kind == A_Expr_Kind.AEXPR_OP and op in lookups:
            for column_side, value_side, operator in (
                (node.lexpr, node.rexpr, op),
                (node.rexpr, node.lexpr, flipped[op]),
            ):
                column = self._field_of(column_side)
                # "= NULL" is never true in SQL, and Q(x=None) means IS NULL.
                if column is not None and not _is_null(value_side):
                    return f"Q({column}{lookups[operator]}={self.value(value_side)})"
            return None
        if node.kind == A_Expr_Kind.AEXPR_IN and op == "=":
            column = self._field_of(node.lexpr)
            values = [_python_constant(v) for v in node.rexpr or ()]
            if column is not None and values and None not in values and "None" not in values:
                return f"Q({column}__in=[{', '.join(v for v in values if v)}])"
            return None
        if node.kind == A_Expr_Kind.AEXPR_BETWEEN:
            column = self._field_of(node.lexpr)
            ends = [_python_constant(v) for v in node.rexpr or ()]
            if column is not None and len(ends) == 2 and None not in ends and "None" not in ends:
                return f"Q({column}__range=({ends[0]}, {ends[1]}))"
        return None

    def _field_of(self, node: Any) -> str | None:
        column = self.target.column(node)
        return self.fields.get(column) if column is not None else None

    def _foreign(self, node: Any) -> bool:
        """Whether ``node`` refers to a ``FROM`` item or a ``WITH`` query, which Backfill lacks.

        Remembers what for the hint (``elided``).
        """
        for found, in_subquery in walk(node, False):
            if (
                isinstance(found, ast.RangeVar)
                and not found.schemaname
                and found.relname in self.target.ctes
            ):
                self.elided = self.elided or f"the WITH query {found.relname}"
                return True
            if not isinstance(found, ast.ColumnRef) or in_subquery:
                continue
            names = [f.sval for f in found.fields or () if isinstance(f, ast.String)]
            if (len(names) > 1 and names[-2] != self.target.qualifier) or (
                len(names) == 1 and self.target.sources and names[0] not in self.fields
            ):
                self.elided = self.elided or f"the rows it joins ({self.target.joined})"
                return True
        return False

    def _raw(self, node: Any, *, condition: bool) -> str:
        """``RawSQL`` for ``node``, its columns named as Django's UPDATE names them."""
        node = copy.deepcopy(node)
        table = self.target.table.name
        for ref, _ in column_refs(node):
            names = [f.sval for f in ref.fields or () if isinstance(f, ast.String)]
            if len(names) > 1 and names[-2] == self.target.qualifier:
                ref.fields = (ast.String(sval=table), ast.String(sval=names[-1]))
        # RawSQL sends its text with (no) parameters: a literal % must be doubled.
        sql = deparse(node).replace("%", "%%")
        self.names.add("from django.db.models.expressions import RawSQL")
        if condition:
            self.names.add("from django.db.models import BooleanField")
            return f"RawSQL({quote(sql)}, [], output_field=BooleanField())"
        return f"RawSQL({quote(sql)}, [])"


def quote(text: str) -> str:
    """``text`` as a Python string literal (JSON's is one), in double quotes."""
    return json.dumps(text, ensure_ascii=False)


def _is_null(node: Any) -> bool:
    return isinstance(node, ast.A_Const) and bool(node.isnull)


#: Type names whose casts of a literal keep the literal's Python value.
_PLAIN_CASTS = {"text", "varchar", "int2", "int4", "int8", "integer", "bigint", "smallint"}


def _python_constant(node: Any) -> str | None:
    """A SQL literal as Python source (``None`` when it is not one Python can write)."""
    if isinstance(node, ast.TypeCast) and node.typeName is not None:
        names = [n.sval for n in node.typeName.names or () if isinstance(n, ast.String)]
        if node.typeName.arrayBounds or not names or names[-1] not in _PLAIN_CASTS:
            return None
        node = node.arg
    if not isinstance(node, ast.A_Const):
        return None
    if node.isnull:
        return "None"
    value = node.val
    if isinstance(value, ast.Integer):
        return str(value.ival)
    if isinstance(value, ast.Float):
        return str(value.fval)
    if isinstance(value, ast.Boolean):
        return str(bool(value.boolval))
    if isinstance(value, ast.String):
        return quote(str(value.sval))
    return None
