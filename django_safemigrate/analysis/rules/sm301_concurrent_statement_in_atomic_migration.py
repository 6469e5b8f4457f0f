"""A statement PostgreSQL refuses inside a transaction fails when Django runs its migration in one.

Some statements cannot run inside a transaction block: ``CREATE INDEX
CONCURRENTLY``, ``DROP INDEX CONCURRENTLY``, ``REINDEX CONCURRENTLY``, ``ALTER
TABLE … DETACH PARTITION … CONCURRENTLY``, ``VACUUM``, a ``DO`` block that
commits, and others (``django_safemigrate.transactions`` has the list). Django
applies an atomic migration (the default) inside one transaction, so the deploy
stops there: PostgreSQL answers "CREATE INDEX CONCURRENTLY cannot run inside a
transaction block", and for ``AddIndexConcurrently``/``RemoveIndexConcurrently``
Django refuses before PostgreSQL does.

A ``RunSQL`` list item holding several statements is one query string, which
PostgreSQL runs as one implicit transaction block: such a statement fails there
too, even in a migration with ``atomic = False``.

django-pg-zero-downtime-migrations runs every migration without a transaction
(``RunPython`` aside), so under that backend an atomic migration is not a
problem; the rule judges the backend that is configured.

Safe alternative: set ``atomic = False`` on the migration and keep that
statement as its only operation, or apply the migration with ``safemigrate``,
which runs such statements in a step of their own. Give each statement of a
``RunSQL`` its own list item.

``ALTER TYPE … ADD VALUE`` before PostgreSQL 12 is reported by SM303.

https://www.postgresql.org/docs/current/sql-createindex.html#SQL-CREATEINDEX-CONCURRENTLY
https://docs.djangoproject.com/en/stable/howto/writing-migrations/#non-atomic-migrations
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pglast import ast
from pglast.enums import ReindexObjectType

from django_safemigrate.analysis.context import OperationContext, StatementContext
from django_safemigrate.analysis.findings import Hit
from django_safemigrate.analysis.pgtree import relation_name
from django_safemigrate.analysis.registry import Rule
from django_safemigrate.enums import Kind, Risk
from django_safemigrate.transactions import (
    Block,
    enclosing_block,
    operation_block,
    refuses_transaction,
)

rule = Rule(
    code="SM301",
    name="concurrent-statement-in-atomic-migration",
    severity=Risk.RISKY,
    doc=__doc__,
    kinds=(Kind.MAY_FAIL,),
)

_NON_ATOMIC_HINT = (
    "Set atomic = False on the migration (class Migration(migrations.Migration): "
    "atomic = False) and keep this as its only operation, or apply it with "
    "'python manage.py safemigrate', which runs such statements in a step of their own."
)


@rule.on_statement(ast.Node)
def check(node: Any, ctx: StatementContext) -> Iterator[Hit]:
    reason = refuses_transaction(node, ctx.migration.pg_version)
    # ALTER TYPE … ADD VALUE has a rule of its own (SM303).
    if reason is None or isinstance(node, ast.AlterEnumStmt):
        return
    mctx = ctx.migration
    block = enclosing_block(mctx.migration, ctx.operation.operation, ctx.statement, mctx.connection)
    if block is None:
        return
    if block is Block.QUERY_STRING:
        yield Hit(
            message=(
                f"{reason} is sent in one query string with other statements, which "
                "PostgreSQL runs as one transaction block, so it fails with 'cannot run "
                "inside a transaction block'."
            ),
            hint=(
                "Give each statement of that item a list item of its own "
                "(RunSQL(sql=['first statement', 'second statement'])), or pass one string, "
                "which Django splits into statements sent one by one."
            ),
            table=_table(node),
        )
        return
    where = "migration" if block is Block.MIGRATION else "operation"
    yield Hit(
        message=(
            f"{reason} cannot run inside a transaction block, and Django runs this {where} "
            "in one, so the deploy fails here."
        ),
        hint=_NON_ATOMIC_HINT,
        table=_table(node),
    )


@rule.on_operation(object)
def check_unrendered(operation: Any, ctx: OperationContext) -> Iterator[Hit]:
    """``AddIndexConcurrently``/``RemoveIndexConcurrently`` whose SQL could not be shown.

    Django refuses them inside a transaction before any SQL exists (and renders none
    when the analysis itself runs inside one); when their SQL was rendered, the
    statement check above reports it.
    """
    concurrent = [op for op in _database_operations(operation) if _refuses_atomic(op)]
    if not concurrent:
        return
    mctx = ctx.migration
    if any(refuses_transaction(s.tree, mctx.pg_version) for s in ctx.sql.statements):
        return
    if operation_block(mctx.migration, operation, mctx.connection) is None:
        return
    name = type(concurrent[0]).__name__
    model = getattr(concurrent[0], "model_name", None)
    yield Hit(
        message=(
            f"{name} cannot run inside a transaction, and Django runs this migration in one, "
            "so the deploy fails here."
        ),
        hint=_NON_ATOMIC_HINT,
        table=ctx.table_of(model) if model else None,
    )


def _database_operations(operation: Any) -> Iterator[Any]:
    from django.db.migrations.operations.special import SeparateDatabaseAndState

    if isinstance(operation, SeparateDatabaseAndState):
        for inner in operation.database_operations:
            yield from _database_operations(inner)
    else:
        yield operation


def _refuses_atomic(operation: Any) -> bool:
    """Django's own non-transactional operations (AddIndexConcurrently, RemoveIndexConcurrently)."""
    from django.contrib.postgres.operations import NotInTransactionMixin

    return isinstance(operation, NotInTransactionMixin)


def _table(node: Any) -> str | None:
    """The table the statement works on, where the statement names one."""
    reindex_table = (
        isinstance(node, ast.ReindexStmt) and node.kind == ReindexObjectType.REINDEX_OBJECT_TABLE
    )
    if reindex_table or isinstance(node, ast.IndexStmt | ast.AlterTableStmt | ast.ClusterStmt):
        return relation_name(node.relation)
    if isinstance(node, ast.VacuumStmt) and node.rels:
        return relation_name(getattr(node.rels[0], "relation", None))
    return None
