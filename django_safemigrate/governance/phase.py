"""A migration's deploy phase: declared in its file, or inferred from what it does.

Pre-deploy (expand) migrations are safe while the old code still runs; post-deploy
(contract) migrations break the old code and wait until it is gone: dropping a
column or a table, renaming one, dropping a unique constraint (the old code's
upserts need it), and making a live column NOT NULL (the old code may still write
NULL there).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

from django_safemigrate.analysis.findings import Finding
from django_safemigrate.enums import Phase
from django_safemigrate.exceptions import UsageError
from django_safemigrate.governance.markers import Declared, InvalidMarker, declared_phase
from django_safemigrate.sql import OperationSQL

#: Rules whose blocking findings make a migration a contract step: the old code
#: reads or writes what they remove or rename.
CONTRACT_CODES = {
    "SM201": "drops a column the old code still uses",
    "SM202": "drops a table the old code still uses",
    "SM203": "renames a column the old code still uses",
    "SM204": "renames a table the old code still uses",
    "SM209": "drops a unique constraint the old code relies on",
}


@dataclasses.dataclass(frozen=True)
class PhaseOf:
    phase: Phase
    reason: str
    #: From ``Safe.after_deploy(delay=...)``.
    delay: Any = None
    declared: bool = False


def declared_or_error(migration: Any) -> Declared | None:
    """:func:`declared_phase`, with an invalid marker turned into a usage error (exit 2)."""
    try:
        return declared_phase(migration)
    except InvalidMarker as exc:
        raise UsageError(
            f"Migration {migration.app_label}.{migration.name} declares its phase wrongly: "
            f"{exc}. Use safe = Safe.before_deploy(), Safe.after_deploy() or Safe.always() "
            "(from django_safemigrate import Safe), or safemigrate_phase = 'pre_deploy', "
            "'post_deploy' or 'always'. Nothing was applied."
        ) from exc


def phase_of(
    migration: Any,
    findings: Iterable[Finding],
    operations: Iterable[OperationSQL],
    created_tables: Iterable[str],
    *,
    infer: bool,
) -> PhaseOf:
    declared = declared_or_error(migration)
    if declared is not None:
        return PhaseOf(
            declared.phase, f"declared: {declared.source}", declared.delay, declared=True
        )
    if not infer:
        return PhaseOf(Phase.ALWAYS, "not declared (runs in either phase)")
    reasons = sorted(
        {
            f"{f.code} {CONTRACT_CODES[f.code]}" + (f" ({f.table})" if f.table else "")
            for f in findings
            if f.code in CONTRACT_CODES and f.blocking
        }
    )
    new = set(created_tables)
    for op in operations:
        for statement in op.statements:
            table = _set_not_null_table(statement.tree)
            if table is not None and table not in new:
                reasons.append(
                    f"makes a column of {table} NOT NULL, which the old code may not fill"
                )
    if reasons:
        return PhaseOf(Phase.POST_DEPLOY, "inferred: " + "; ".join(dict.fromkeys(reasons)))
    return PhaseOf(Phase.PRE_DEPLOY, "inferred: additive (safe with the old code)")


def _set_not_null_table(tree: Any) -> str | None:
    from pglast import ast as pg
    from pglast.enums import AlterTableType

    if not isinstance(tree, pg.AlterTableStmt) or tree.relation is None:
        return None
    for cmd in tree.cmds or ():
        if isinstance(cmd, pg.AlterTableCmd) and cmd.subtype == AlterTableType.AT_SetNotNull:
            return str(tree.relation.relname)
    return None
