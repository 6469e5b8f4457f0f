"""An enum value added in a transaction is refused before PG 12, and unusable until commit.

Before PostgreSQL 12, ``ALTER TYPE … ADD VALUE`` cannot run inside a
transaction block at all, so an atomic migration holding it fails. Since
PostgreSQL 12 it can, but the new value cannot be used until the transaction
commits: a later statement of the same transaction that mentions it (a cast, an
``INSERT``, an ``UPDATE``, a ``DEFAULT``) fails with "unsafe use of new value"
(SQLSTATE 55P04), even when the type itself was created in that transaction.

From PostgreSQL 12 on, the rule fires only when a later statement of the same
transaction holds the new label as a string constant (in its parse tree, not
inside a function or ``DO`` body). "The same transaction" is the whole
migration when Django runs it in one, or a ``RunSQL`` list item holding several
statements (one query string, one implicit transaction block).

Safe alternative: add the value in a migration of its own, and use it in a
later migration. Before PostgreSQL 12, that migration also needs
``atomic = False`` (or ``safemigrate``, which runs the statement in a step of
its own).

https://www.postgresql.org/docs/current/sql-altertype.html
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pglast import ast

from django_safemigrate.analysis.context import StatementContext
from django_safemigrate.analysis.findings import Hit
from django_safemigrate.analysis.registry import Rule
from django_safemigrate.enums import Kind, Risk
from django_safemigrate.transactions import (
    Block,
    added_enum_value,
    enclosing_block,
    statements_after,
    uses_string_constant,
)

_WHERE = {
    Block.MIGRATION: "Django runs this migration in one",
    Block.OPERATION: "Django runs this operation in one",
    Block.QUERY_STRING: "it shares a RunSQL query string with other statements, which "
    "PostgreSQL runs as one",
}

rule = Rule(
    code="SM303",
    name="enum-value-added-in-transaction",
    severity=Risk.RISKY,
    doc=__doc__,
    kinds=(Kind.MAY_FAIL,),
)


@rule.on_statement(ast.AlterEnumStmt)
def check(node: Any, ctx: StatementContext) -> Iterator[Hit]:
    label = added_enum_value(node)
    if label is None:
        return  # RENAME VALUE
    mctx = ctx.migration
    operation = ctx.operation.operation
    block = enclosing_block(mctx.migration, operation, ctx.statement, mctx.connection)
    if block is None:
        return
    type_name = ".".join(str(n.sval) for n in node.typeName or () if isinstance(n, ast.String))
    if mctx.pg_version < 12:
        yield Hit(
            message=(
                f"ALTER TYPE {type_name} ADD VALUE cannot run inside a transaction block "
                f"before PostgreSQL 12, and {_WHERE[block]}, so the deploy fails here."
            ),
            hint=(
                "Put the ALTER TYPE ... ADD VALUE alone in a migration with atomic = False "
                "(class Migration(migrations.Migration): atomic = False), or apply it with "
                "'python manage.py safemigrate', which runs it in a step of its own."
            ),
        )
        return
    later = statements_after(
        mctx.operations, ctx.operation.sql.index, ctx.statement, block, operation
    )
    for statement in later:
        if statement.tree is not None and uses_string_constant(statement.tree, label):
            yield Hit(
                message=(
                    f"'{label}' is added to {type_name} and used in the same transaction, "
                    f"where it is not usable until commit, so {_short(statement.sql)} fails "
                    'with "unsafe use of new value".'
                ),
                hint=(
                    "Add the value in a migration of its own "
                    f"(RunSQL(\"ALTER TYPE {type_name} ADD VALUE '{label}'\")) and use it in a "
                    "later migration."
                ),
            )
            return


def _short(sql: str, limit: int = 60) -> str:
    text = " ".join(sql.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
