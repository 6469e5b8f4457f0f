"""Adding a column whose value must be computed row by row rewrites the whole table.

Since PostgreSQL 11, ``ADD COLUMN`` with a constant or STABLE default is a
catalog change: the default is stored once and returned for the old rows. A
value that differs per row has to be written into every row, so PostgreSQL
rewrites the table (and rebuilds its indexes) under an ACCESS EXCLUSIVE lock,
and reads and writes wait until it is done. That happens for:

* a VOLATILE default: ``random()``, ``gen_random_uuid()`` (Django's
  ``db_default=RandomUUID()``), ``clock_timestamp()``, ``nextval()``, and any
  function not declared STABLE or IMMUTABLE (``CREATE FUNCTION``'s default is
  VOLATILE). ``now()``, ``CURRENT_TIMESTAMP`` and ``statement_timestamp()``
  (Django's ``db_default=Now()``) are STABLE: no rewrite;
* a ``serial``/``bigserial`` column (its default is ``nextval()``) and an
  identity column (``GENERATED … AS IDENTITY``);
* a stored generated column (``GENERATED ALWAYS AS (…) STORED``, Django's
  ``GeneratedField(db_persist=True)``); PostgreSQL 18's virtual ones are not
  stored and do not rewrite;
* before PostgreSQL 11, any default other than NULL (Django's ``AddField``
  with a ``default`` sends one, then drops it).

Each claim was checked on PostgreSQL 15 by comparing ``pg_class.relfilenode``
before and after (see the tests).

Safe alternative: add the column without the default, give new rows their
value with ``SET DEFAULT`` (which does not touch existing rows), and backfill
the old rows in batches::

    migrations.AddField("order", "token", models.UUIDField(null=True)),
    # ALTER COLUMN … SET DEFAULT gen_random_uuid(): new rows only, no rewrite
    migrations.AlterField("order", "token", models.UUIDField(null=True, db_default=RandomUUID())),
    # then, in a migration with atomic = False, batches of
    # UPDATE shop_order SET token = gen_random_uuid() WHERE id BETWEEN … AND token IS NULL
    # and NOT NULL without a scan (see SM106).

A stored generated column has no such path: fill a plain column from the code
or a trigger instead. Columns of a table created in the same migration are left
alone: the table is empty.

https://www.postgresql.org/docs/current/sql-altertable.html#SQL-ALTERTABLE-NOTES
https://www.postgresql.org/docs/current/xfunc-volatility.html
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pglast import ast
from pglast.enums import AlterTableType, ConstrType

from django_safemigrate.analysis.context import StatementContext
from django_safemigrate.analysis.findings import Hit
from django_safemigrate.analysis.pgtree import alter_commands, func_name, relation_name
from django_safemigrate.analysis.registry import Rule
from django_safemigrate.enums import Kind, LockMode, Risk

rule = Rule(
    code="SM108",
    name="volatile-default-rewrites",
    severity=Risk.RISKY,
    doc=__doc__,
    kinds=(Kind.BLOCKS_TRAFFIC,),
)

_SERIAL = {"smallserial", "serial", "bigserial", "serial2", "serial4", "serial8"}

#: Built-in functions marked VOLATILE in pg_proc that show up as defaults.
_VOLATILE = {
    "random",
    "random_normal",
    "setseed",
    "gen_random_uuid",
    "uuidv4",
    "uuidv7",
    "uuid_generate_v1",
    "uuid_generate_v1mc",
    "uuid_generate_v4",
    "gen_random_bytes",
    "clock_timestamp",
    "timeofday",
    "nextval",
    "setval",
    "currval",
    "lastval",
}

#: Built-in functions marked IMMUTABLE or STABLE in pg_proc (a default calling them
#: is computed once).
_NOT_VOLATILE = {
    # time (STABLE)
    "now",
    "statement_timestamp",
    "transaction_timestamp",
    "current_timestamp",
    "localtimestamp",
    "current_date",
    "txid_current",
    "pg_current_xact_id",
    "current_setting",
    "current_user",
    "current_schema",
    "to_char",
    "to_date",
    "to_timestamp",
    "to_number",
    "date_trunc",
    "date_part",
    "extract",
    "make_date",
    "make_time",
    "make_timestamp",
    "make_timestamptz",
    "make_interval",
    "age",
    "timezone",
    # text
    "lower",
    "upper",
    "initcap",
    "concat",
    "concat_ws",
    "format",
    "length",
    "char_length",
    "octet_length",
    "left",
    "right",
    "lpad",
    "rpad",
    "btrim",
    "ltrim",
    "rtrim",
    "replace",
    "repeat",
    "reverse",
    "substr",
    "substring",
    "split_part",
    "strpos",
    "translate",
    "md5",
    "sha224",
    "sha256",
    "sha384",
    "sha512",
    "encode",
    "decode",
    "chr",
    "ascii",
    "regexp_replace",
    "string_to_array",
    "array_to_string",
    # numbers
    "abs",
    "ceil",
    "ceiling",
    "floor",
    "round",
    "trunc",
    "mod",
    "power",
    "sqrt",
    "exp",
    "ln",
    "log",
    "pi",
    "sign",
    "greatest",
    "least",
    # json and arrays
    "to_json",
    "to_jsonb",
    "json_build_object",
    "jsonb_build_object",
    "json_build_array",
    "jsonb_build_array",
    "array_fill",
    "array_append",
    "array_prepend",
    "array_cat",
}


@rule.on_statement(ast.AlterTableStmt)
def check(node: ast.AlterTableStmt, ctx: StatementContext) -> Iterator[Hit]:
    table = relation_name(node.relation)
    if table is None or ctx.migration.is_new_table(table):
        return
    for cmd in alter_commands(node):
        if cmd.subtype != AlterTableType.AT_AddColumn or not isinstance(cmd.def_, ast.ColumnDef):
            continue
        column = cmd.def_
        reason = _why_rewrite(column, ctx.migration.pg_version)
        if reason is None:
            continue
        what, hint = reason
        yield Hit(
            message=(
                f"ADD COLUMN {column.colname} on {table} {what}, so PostgreSQL rewrites the "
                "whole table and its indexes under an ACCESS EXCLUSIVE lock: reads and writes "
                "wait until it is done."
            ),
            hint=hint,
            table=table,
            lock=LockMode.ACCESS_EXCLUSIVE,
            rewrites_table=True,
        )


def _why_rewrite(column: ast.ColumnDef, pg_version: int) -> tuple[str, str] | None:
    name = str(column.colname)
    names = column.typeName.names if column.typeName is not None else None
    type_names = [str(n.sval).lower() for n in names or () if isinstance(n, ast.String)]
    if type_names and type_names[-1] in _SERIAL:
        return f"is a {type_names[-1]} (its default is nextval())", _sequence_hint(name)
    for constraint in column.constraints or ():
        if not isinstance(constraint, ast.Constraint):
            continue
        if constraint.contype == ConstrType.CONSTR_IDENTITY:
            return "is an identity column (each row gets a number)", _sequence_hint(name)
        if constraint.contype == ConstrType.CONSTR_GENERATED and constraint.generated_kind != "v":
            return "is a stored generated column (computed for each row)", _generated_hint(name)
        if constraint.contype != ConstrType.CONSTR_DEFAULT or _is_null(constraint.raw_expr):
            continue
        if pg_version < 11:
            return (
                "has a default, which before PostgreSQL 11 is written into every row",
                _default_hint(name, before_11=True),
            )
        volatile = _volatile_call(constraint.raw_expr)
        if volatile is None:
            continue
        function, known = volatile
        if known:
            what = f"has a volatile default ({function}() differs for each row)"
        else:
            what = (
                f"has a default calling {function}(), which is volatile unless it was declared "
                "STABLE or IMMUTABLE (a volatile default differs for each row)"
            )
        return what, _default_hint(name, before_11=False)
    return None


def _is_null(expr: Any) -> bool:
    return expr is None or (isinstance(expr, ast.A_Const) and bool(expr.isnull))


def _volatile_call(expr: Any) -> tuple[str, bool] | None:
    """The first function of ``expr`` that is (or may be) volatile, and whether it is known."""
    unknown = None
    for call in _function_calls(expr):
        name = func_name(call).rsplit(".", 1)[-1].lower()
        if name in _VOLATILE:
            return name, True
        if name not in _NOT_VOLATILE and unknown is None:
            unknown = name
    return (unknown, False) if unknown else None


def _function_calls(node: Any) -> Iterator[ast.FuncCall]:
    """Every ``FuncCall`` in the expression tree (operators, casts and constants are not
    volatile; SQL value functions like CURRENT_TIMESTAMP are STABLE)."""
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, list | tuple):
            stack.extend(item)
            continue
        if not isinstance(item, ast.Node):
            continue
        if isinstance(item, ast.FuncCall):
            yield item
        for attribute in item:
            stack.append(getattr(item, attribute))


def _default_hint(column: str, *, before_11: bool) -> str:
    intro = (
        "Add the column nullable without a default (AddField with null=True), "
        if not before_11
        else "Upgrade to PostgreSQL 11+, or add the column nullable without a default "
        "(AddField with null=True), "
    )
    return (
        f"{intro}then set the default for new rows only with AlterField(..., db_default=...) "
        f'(ALTER COLUMN "{column}" SET DEFAULT does not touch existing rows), backfill the '
        "old rows in batches from a migration with atomic = False, and make the column NOT "
        "NULL without a scan (see SM106)."
    )


def _sequence_hint(column: str) -> str:
    return (
        "Add a plain nullable bigint column (AddField with null=True), give it a sequence "
        f"with RunSQL('CREATE SEQUENCE ...') and ALTER COLUMN \"{column}\" SET DEFAULT "
        "nextval(...) (new rows only), backfill the old rows in batches from a migration with "
        "atomic = False, then make it NOT NULL without a scan (see SM106)."
    )


def _generated_hint(column: str) -> str:
    return (
        f'PostgreSQL has no online way to add a stored generated column: add "{column}" as a '
        "plain nullable column filled by the code (or a trigger), backfill it in batches from "
        "a migration with atomic = False; or add the GeneratedField while the table is small "
        "and acknowledge this finding with the reason."
    )
