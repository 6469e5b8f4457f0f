"""Small readers of pglast parse trees shared by rules."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pglast import ast
from pglast.enums import AlterTableType, ConstrType


def relation_name(node: Any) -> str | None:
    """``schema.table`` → ``table`` (rules and table sizes work on unqualified names)."""
    if node is None:
        return None
    return str(node.relname) if getattr(node, "relname", None) else None


def alter_commands(stmt: ast.AlterTableStmt) -> Iterator[ast.AlterTableCmd]:
    for cmd in stmt.cmds or ():
        if isinstance(cmd, ast.AlterTableCmd):
            yield cmd


def constraints_added(stmt: ast.AlterTableStmt) -> Iterator[ast.Constraint]:
    for cmd in alter_commands(stmt):
        if cmd.subtype == AlterTableType.AT_AddConstraint and isinstance(cmd.def_, ast.Constraint):
            yield cmd.def_


def is_not_valid(constraint: ast.Constraint) -> bool:
    """``NOT VALID``: added without checking existing rows."""
    return bool(constraint.skip_validation)


def constraint_type(constraint: ast.Constraint) -> ConstrType | None:
    return ConstrType(constraint.contype) if constraint.contype is not None else None


def func_name(node: ast.FuncCall) -> str:
    return ".".join(str(n.sval) for n in node.funcname or () if isinstance(n, ast.String))


def validated_in_same_block(table: str, name: str, ctx: Any) -> str | None:
    """Why a constraint added ``NOT VALID`` is validated in the same transaction block.

    ``None`` when no later statement of the same block (the atomic migration, the
    operation's own transaction, or one query string) validates ``name`` on
    ``table``; otherwise the reason, for a message.
    """
    from django_safemigrate.transactions import Block, enclosing_block, statements_after

    why = {
        Block.MIGRATION: "the migration is atomic",
        Block.OPERATION: "the operation runs in a transaction of its own",
        Block.QUERY_STRING: "both are sent in one query string",
    }
    mctx = ctx.migration
    operation = ctx.operation.operation
    block = enclosing_block(mctx.migration, operation, ctx.statement, mctx.connection)
    if block is None:
        return None
    index = ctx.operation.sql.index
    for later in statements_after(mctx.operations, index, ctx.statement, block, operation):
        tree = later.tree
        if (
            isinstance(tree, ast.AlterTableStmt)
            and relation_name(tree.relation) == table
            and any(
                cmd.subtype == AlterTableType.AT_ValidateConstraint and cmd.name == name
                for cmd in alter_commands(tree)
            )
        ):
            return why[block]
    return None
