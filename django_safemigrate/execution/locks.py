"""Which table lock a statement takes, for the plan and progress output.

https://www.postgresql.org/docs/current/explicit-locking.html#LOCKING-TABLES
"""

from __future__ import annotations

from typing import Any

from pglast import ast
from pglast.enums import AlterTableType, ConstrType, ObjectType

from django_safemigrate.enums import LockMode

_WEAK_ALTER = {
    AlterTableType.AT_ValidateConstraint: LockMode.SHARE_UPDATE_EXCLUSIVE,
    AlterTableType.AT_SetStatistics: LockMode.SHARE_UPDATE_EXCLUSIVE,
    AlterTableType.AT_ClusterOn: LockMode.SHARE_UPDATE_EXCLUSIVE,
    AlterTableType.AT_DropCluster: LockMode.SHARE_UPDATE_EXCLUSIVE,
    AlterTableType.AT_SetRelOptions: LockMode.SHARE_UPDATE_EXCLUSIVE,
    AlterTableType.AT_ResetRelOptions: LockMode.SHARE_UPDATE_EXCLUSIVE,
    AlterTableType.AT_EnableTrig: LockMode.SHARE_ROW_EXCLUSIVE,
    AlterTableType.AT_DisableTrig: LockMode.SHARE_ROW_EXCLUSIVE,
}


def statement_lock(node: Any) -> LockMode | None:
    """The strongest table lock ``node`` takes on an existing table, if it takes one."""
    if isinstance(node, ast.IndexStmt):
        return LockMode.SHARE_UPDATE_EXCLUSIVE if node.concurrent else LockMode.SHARE
    if isinstance(node, ast.AlterTableStmt):
        return max(
            (_alter_lock(cmd) for cmd in node.cmds or () if isinstance(cmd, ast.AlterTableCmd)),
            key=list(LockMode).index,
            default=None,
        )
    if isinstance(node, ast.DropStmt):
        if node.removeType == ObjectType.OBJECT_INDEX and node.concurrent:
            return LockMode.SHARE_UPDATE_EXCLUSIVE
        return LockMode.ACCESS_EXCLUSIVE
    if isinstance(node, ast.RenameStmt | ast.TruncateStmt | ast.ClusterStmt):
        return LockMode.ACCESS_EXCLUSIVE
    if isinstance(node, ast.VacuumStmt):
        full = any(isinstance(o, ast.DefElem) and o.defname == "full" for o in node.options or ())
        return LockMode.ACCESS_EXCLUSIVE if full else LockMode.SHARE_UPDATE_EXCLUSIVE
    if isinstance(node, ast.ReindexStmt):
        concurrent = any(
            isinstance(o, ast.DefElem) and o.defname == "concurrently" for o in node.params or ()
        )
        return LockMode.SHARE_UPDATE_EXCLUSIVE if concurrent else LockMode.SHARE
    if isinstance(node, ast.InsertStmt | ast.UpdateStmt | ast.DeleteStmt):
        return LockMode.ROW_EXCLUSIVE
    return None


def _alter_lock(cmd: ast.AlterTableCmd) -> LockMode:
    if cmd.subtype in _WEAK_ALTER:
        return _WEAK_ALTER[AlterTableType(cmd.subtype)]
    if (
        cmd.subtype == AlterTableType.AT_AddConstraint
        and isinstance(cmd.def_, ast.Constraint)
        and cmd.def_.contype == ConstrType.CONSTR_FOREIGN
    ):
        return LockMode.SHARE_ROW_EXCLUSIVE
    return LockMode.ACCESS_EXCLUSIVE
