"""A migration without a transaction that mixes concurrent and ordinary changes can half-apply.

A statement PostgreSQL refuses inside a transaction (``CREATE INDEX
CONCURRENTLY``, ``VACUUM``, …) needs a migration Django applies without one:
``atomic = False``, or any migration under django-pg-zero-downtime-migrations.
Every statement of such a migration then commits on its own. When it also holds
ordinary schema or data changes, a failure part-way (a lock timeout, a
duplicate that breaks a unique index) leaves the statements before it applied,
Django does not record the migration, and running it again fails on what is
already there ("column … already exists").

Mixing is judged between operations, and inside hand-written SQL. An operation
whose backend emits both kinds by itself (the zero-downtime backend's
``AddField`` of a ``ForeignKey``: ``ADD COLUMN``, then ``CREATE INDEX
CONCURRENTLY``) cannot be split by the migration's author and is left alone;
that backend's ``ZERO_DOWNTIME_MIGRATIONS_IDEMPOTENT_SQL = True`` lets a rerun
skip what its own statements already did.

Safe alternative: one non-transactional operation per migration, with
``atomic = False``, and the other operations in migrations of their own
(atomic); or apply with ``safemigrate``, which splits the migration into steps
(each non-transactional statement alone, the other operations in transactions)
and resumes after the last finished step.

https://docs.djangoproject.com/en/stable/howto/writing-migrations/#non-atomic-migrations
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

from pglast import ast

from django_safemigrate.analysis.context import MigrationContext
from django_safemigrate.analysis.findings import Hit
from django_safemigrate.analysis.pgtree import relation_name
from django_safemigrate.analysis.registry import Rule
from django_safemigrate.enums import Kind, Risk
from django_safemigrate.sql import OperationSQL
from django_safemigrate.transactions import (
    is_transaction_control,
    migration_in_transaction,
    refuses_transaction,
)

rule = Rule(
    code="SM302",
    name="mixed-transactional-and-non-transactional",
    severity=Risk.RISKY,
    doc=__doc__,
    kinds=(Kind.MAY_FAIL,),
)


@dataclasses.dataclass(frozen=True)
class _Concurrent:
    index: int
    statement: str
    table: str | None


@rule.on_migration
def check(ctx: MigrationContext) -> Iterator[Hit]:
    if migration_in_transaction(ctx.migration, ctx.connection):
        return  # SM301's case: the statement fails, and the transaction undoes the rest.
    earlier_concurrent: _Concurrent | None = None
    earlier_ordinary: int | None = None
    for op in ctx.operations:
        concurrent = _concurrent(op, ctx.pg_version)
        ordinary = _does_ordinary_work(op, ctx.pg_version)
        if concurrent is not None and earlier_ordinary is not None:
            yield _hit(op, concurrent, earlier_ordinary)
            return
        if ordinary and earlier_concurrent is not None:
            yield _hit(op, earlier_concurrent, op.index)
            return
        if concurrent is not None and ordinary and _handwritten(op):
            yield _hit(op, concurrent, op.index)
            return
        if concurrent is not None and earlier_concurrent is None:
            earlier_concurrent = concurrent
        if ordinary and earlier_ordinary is None:
            earlier_ordinary = op.index


def _hit(op: OperationSQL, concurrent: _Concurrent, ordinary: int) -> Hit:
    if concurrent.index == ordinary:
        mix = f"{concurrent.statement} with ordinary statements in one RunSQL"
    else:
        mix = (
            f"{concurrent.statement} (operation {concurrent.index}) with ordinary changes "
            f"(operation {ordinary})"
        )
    return Hit(
        message=(
            f"This migration runs without a transaction and mixes {mix}: if a statement "
            "fails, the ones before it stay applied, Django does not record the migration, "
            "and running it again fails on what is already done."
        ),
        hint=(
            "Move the non-transactional operation into a migration of its own "
            "(atomic = False, that operation only) and the other operations into separate, "
            "atomic migrations; or apply with 'python manage.py safemigrate', which runs "
            "them as separate steps and resumes after the last finished one."
        ),
        table=concurrent.table,
        operation_index=op.index,
    )


def _concurrent(op: OperationSQL, pg_version: int) -> _Concurrent | None:
    """The first statement of ``op`` that refuses a transaction, if any."""
    for statement in op.statements:
        reason = refuses_transaction(statement.tree, pg_version)
        if reason is not None:
            return _Concurrent(op.index, reason, _table(statement.tree))
    from django.contrib.postgres.operations import NotInTransactionMixin
    from django.db.migrations.operations.special import SeparateDatabaseAndState

    # AddIndexConcurrently & co. render no SQL when the analysis itself runs inside a
    # transaction (Django refuses them there); they are non-transactional all the same.
    operations = [op.operation]
    if isinstance(op.operation, SeparateDatabaseAndState):
        operations = list(op.operation.database_operations)
    for operation in operations:
        if isinstance(operation, NotInTransactionMixin):
            return _Concurrent(op.index, type(operation).__name__, None)
    return None


def _does_ordinary_work(op: OperationSQL, pg_version: int) -> bool:
    """True when ``op`` changes schema or data with something a transaction could hold."""
    from django.db.migrations.operations.special import RunPython

    if isinstance(op.operation, RunPython):
        return op.operation.code is not RunPython.noop
    return any(_is_ordinary(statement.tree, pg_version) for statement in op.statements)


def _is_ordinary(tree: Any, pg_version: int) -> bool:
    if tree is None:
        return True  # unparsable SQL still runs
    if refuses_transaction(tree, pg_version) is not None or is_transaction_control(tree):
        return False
    # Session settings change nothing that a failure would leave behind.
    return not isinstance(tree, ast.VariableSetStmt | ast.VariableShowStmt)


def _handwritten(op: OperationSQL) -> bool:
    return any(statement.handwritten for statement in op.statements)


def _table(node: Any) -> str | None:
    """The table of a concurrent index build or partition detach (other statements name none)."""
    if isinstance(node, ast.IndexStmt | ast.AlterTableStmt):
        return relation_name(node.relation)
    return None
