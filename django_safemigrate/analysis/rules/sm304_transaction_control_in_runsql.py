"""``BEGIN``, ``COMMIT``, ``ROLLBACK`` or ``SAVEPOINT`` in ``RunSQL`` break Django's transactions.

Django (and ``safemigrate``) decide where a migration's transactions begin and
end. Transaction control written by hand takes that over behind their back:

* ``COMMIT`` inside an atomic migration commits its work so far: a later
  failure rolls back only what came after, and the migration is left
  half-applied and unrecorded.
* ``ROLLBACK`` inside an atomic migration silently undoes its work so far; the
  rest runs, and Django records the migration as applied.
* ``BEGIN`` inside an atomic migration only warns, and the ``COMMIT`` or
  ``ROLLBACK`` that was meant to pair with it ends Django's transaction
  instead. In a migration with ``atomic = False`` it opens a transaction Django
  does not know about: without a matching ``COMMIT``, what follows, Django's
  record of the migration included, is rolled back when the connection closes.
* ``SAVEPOINT``, ``RELEASE`` and ``ROLLBACK TO`` are harmless inside Django's
  transaction, but fail outside one ("can only be used in transaction blocks"):
  they are reported only there.

Safe alternative: remove them. An atomic migration already runs every
statement in one transaction; for statements that must run outside one, use a
migration with ``atomic = False`` holding only those (or ``safemigrate``, which
runs them in steps of their own).

https://www.postgresql.org/docs/current/tutorial-transactions.html
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pglast import ast
from pglast.enums import TransactionStmtKind

from django_safemigrate.analysis.context import StatementContext
from django_safemigrate.analysis.findings import Hit
from django_safemigrate.analysis.registry import Rule
from django_safemigrate.enums import Kind, Risk
from django_safemigrate.transactions import (
    Block,
    enclosing_block,
    is_savepoint,
    is_transaction_control,
)

rule = Rule(
    code="SM304",
    name="transaction-control-in-runsql",
    severity=Risk.RISKY,
    doc=__doc__,
    kinds=(Kind.MAY_FAIL,),
)

_K = TransactionStmtKind
_NAMES = {
    _K.TRANS_STMT_BEGIN: "BEGIN",
    _K.TRANS_STMT_START: "START TRANSACTION",
    _K.TRANS_STMT_COMMIT: "COMMIT",
    _K.TRANS_STMT_ROLLBACK: "ROLLBACK",
    _K.TRANS_STMT_SAVEPOINT: "SAVEPOINT",
    _K.TRANS_STMT_RELEASE: "RELEASE SAVEPOINT",
    _K.TRANS_STMT_ROLLBACK_TO: "ROLLBACK TO SAVEPOINT",
    _K.TRANS_STMT_PREPARE: "PREPARE TRANSACTION",
}

_BEGIN = {_K.TRANS_STMT_BEGIN, _K.TRANS_STMT_START}

_HINT = (
    "Remove it from the RunSQL: an atomic migration already runs every statement in one "
    "transaction; statements that must run outside one go in a migration with "
    "atomic = False holding only them (or are applied by 'python manage.py safemigrate' "
    "in steps of their own)."
)


@rule.on_statement(ast.TransactionStmt)
def check(node: Any, ctx: StatementContext) -> Iterator[Hit]:
    if not ctx.statement.handwritten or not is_transaction_control(node):
        return
    mctx = ctx.migration
    block = enclosing_block(mctx.migration, ctx.operation.operation, ctx.statement, mctx.connection)
    # Only a transaction Django opened counts: an implicit block (several statements in
    # one query string) accepts no savepoints, and ends with its query string.
    if block is Block.QUERY_STRING:
        block = None
    name = _NAMES.get(node.kind, "Transaction control")
    where = "operation" if block is Block.OPERATION else "migration"
    if is_savepoint(node):
        if block is not None or _after_begin(ctx):
            return  # nested inside a transaction (a BEGIN before it is reported itself)
        message = (
            f"{name} runs outside any transaction Django opened (the migration is not "
            "atomic), so it fails with 'can only be used in transaction blocks'."
        )
    elif block is None:
        verb = "starts" if node.kind in _BEGIN else "ends"
        message = (
            f"{name} {verb} a transaction that Django does not manage: a failure inside it "
            "leaves the connection in an aborted transaction, and work after an unmatched "
            "BEGIN, Django's record of the migration included, is rolled back when the "
            "connection closes."
        )
    elif node.kind == _K.TRANS_STMT_COMMIT:
        message = (
            f"COMMIT ends the transaction Django runs this {where} in: what ran before it "
            "stays committed when a later statement fails, leaving the migration "
            "half-applied and unrecorded."
        )
    elif node.kind == _K.TRANS_STMT_ROLLBACK:
        message = (
            f"ROLLBACK silently undoes what this {where} did before it, and Django then "
            "records the migration as applied."
        )
    elif node.kind in _BEGIN:
        message = (
            f"{name} inside the transaction Django runs this {where} in only warns, and "
            "the COMMIT or ROLLBACK meant to pair with it ends Django's transaction instead."
        )
    else:
        message = (
            f"{name} takes the transaction Django runs this {where} in away from it, so "
            "Django's commit or rollback no longer covers the migration."
        )
    yield Hit(message=message, hint=_HINT)


def _after_begin(ctx: StatementContext) -> bool:
    """True when an earlier statement of the same operation is BEGIN or START TRANSACTION."""
    for statement in ctx.operation.sql.statements:
        if statement is ctx.statement:
            return False
        tree = statement.tree
        if isinstance(tree, ast.TransactionStmt) and tree.kind in _BEGIN:
            return True
    return False
