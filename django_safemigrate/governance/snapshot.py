"""What the review screen shows of one migration, kept when the gate judges it.

The admin runs no analysis of its own: each ``safemigrate`` run keeps, for every
migration of its plan, what a reviewer needs to read before deciding (the findings,
each operation's SQL and the Python it runs, each step with its exact statements,
locks and timeouts, the sizes of the tables), and what the gate decided (the run,
the verdict, the migrations that held it back). Plain values only: it is stored as
JSON and read back by the screen.
"""

from __future__ import annotations

import inspect
import os
import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

from django.db.migrations import Migration

from django_safemigrate.analysis.findings import MigrationReport, TableInfo
from django_safemigrate.governance.gate import GateDecision, GatePolicy
from django_safemigrate.sql import OperationSQL

#: Longest source kept for one function (a reviewer reads it; a generated module would
#: not fit on the page anyway).
_SOURCE_LIMIT = 20_000


def snapshot_fields(
    report: MigrationReport,
    migration: Migration,
    *,
    connection: Any,
    pg_version: int,
    settings: Any,
    sizes: Mapping[str, TableInfo],
) -> dict[str, Any]:
    """What a reviewer needs to see, as the analysis found it for this database."""
    from django_safemigrate.execution.runner import RunnerPolicy
    from django_safemigrate.execution.steps import describe_step_locks, plan_steps

    operations = list(report.operations)
    policy = RunnerPolicy.for_migration(settings, migration)
    planned = plan_steps(migration, operations, pg_version, report.online)
    steps: list[dict[str, Any]] = [
        {
            "index": step.index,
            "kind": step.kind.value,
            "description": step.description,
            "locks": describe_step_locks(step, operations, policy, pg_version),
            "operations": list(step.operation_indexes),
            "sql": [line for part in step.parts for line in _part_sql(part, operations)],
        }
        for step in planned
    ]
    sql_lines: list[str] = []
    described = []
    for op in operations:
        statements = _operation_sql(op)
        sql_lines.append(f"-- {op.index + 1}. {_describe(op.operation)}")
        sql_lines += statements or ["-- (no SQL: changes only Django's model state)"]
        described.append(
            {
                "index": op.index,
                "operation": type(op.operation).__name__,
                "description": _describe(op.operation),
                "sql": statements,
                "python": python_of(op.operation) if not op.reduces_to_sql else [],
                "online": op.index in report.online,
                "steps": [s["index"] for s in steps if op.index in s["operations"]],
            }
        )
    return {
        "checksum": report.checksum,
        "path": report.path or "",
        "risk": report.risk.value,
        "phase": report.phase.value,
        "phase_reason": report.phase_reason,
        "sql": "\n".join(sql_lines),
        "analysis": {
            "findings": [f.as_json() for f in report.findings],
            # What the findings that make up the risk put at risk, and the installed
            # package it comes with (``None``: the project's own): the screen decides
            # from these and the current settings whether it needs a review.
            "kinds": sorted(kind.value for kind in report.kinds),
            "package": report.package,
            "operations": described,
            "steps": steps,
            "tables": _tables(report, sizes),
            "database": {
                "alias": connection.alias,
                "server_version": pg_version,
            },
        },
    }


def gate_fields(
    decision: GateDecision,
    policy: GatePolicy,
    *,
    run: int | None,
    position: int,
    plan: int,
    stopped: bool,
) -> dict[str, Any]:
    """What the gate decided for one migration of a plan, and in which run."""
    return {
        "run": run,
        "verdict": decision.verdict.value,
        "review": decision.review.value,
        "reasons": list(decision.reasons),
        "held_by": [".".join(key) for key in decision.held_by],
        "review_at": policy.review_at.value if policy.review_at else None,
        "review_kinds": sorted(kind.value for kind in policy.review_kinds),
        "phase": policy.phase.value,
        "stopped": stopped,
        "position": position,
        "plan": plan,
    }


def _operation_sql(op: OperationSQL) -> list[str]:
    statements = [s.sql.strip().rstrip(";") + ";" for s in op.statements]
    if not op.reduces_to_sql:
        statements = [f"-- {type(op.operation).__name__}: runs Python code (shown above), no SQL"]
    elif op.render_error:
        statements = [f"-- SQL could not be rendered: {op.render_error}"]
    if op.refused:
        # What the operation tried to run itself while it was rendered (SM404): at
        # deploy it runs for real, so the reviewer sees it first.
        statements = [f"-- tried to run while rendered (refused): {r}" for r in op.refused] + [
            s for s in statements if not s.startswith("-- SQL could not be rendered")
        ]
    return statements


def _part_sql(part: Any, operations: Sequence[OperationSQL]) -> list[str]:
    """The statements one part of a step runs, exactly; Python is named, not shown."""
    op = operations[part.operation_index]
    if part.statements is not None:
        return [s.strip().rstrip(";") + ";" for s in part.statements]
    return _operation_sql(op)


def _tables(report: MigrationReport, sizes: Mapping[str, TableInfo]) -> list[dict[str, Any]]:
    tables: dict[str, dict[str, Any]] = {}
    for finding in report.findings:
        if finding.table and finding.table not in tables:
            info = sizes.get(finding.table)
            tables[finding.table] = {
                "name": finding.table,
                "rows": info.rows if info else None,
                "bytes": info.bytes if info else None,
                "size": info.describe() if info else "not on this database yet",
            }
    return list(tables.values())


def _describe(operation: Any) -> str:
    try:
        return str(operation.describe())
    except Exception:
        return type(operation).__name__


def python_of(operation: Any) -> list[dict[str, Any]]:
    """The Python an operation runs, each function with its source: a ``RunPython``'s
    code and reverse code, or a custom operation's ``database_forwards``."""
    from django.db.migrations.operations.special import RunPython

    found: list[tuple[str, Any]]
    if isinstance(operation, RunPython):
        found = [("forwards", operation.code)]
        if operation.reverse_code is not None:
            found.append(("backwards", operation.reverse_code))
    else:
        found = [("forwards", getattr(type(operation), "database_forwards", None))]
    return [source_of(role, func) for role, func in found if func is not None]


def source_of(role: str, func: Any) -> dict[str, Any]:
    """``{"role", "name", "path", "line", "source"}``; ``source`` is empty and ``error``
    says why when Python cannot show it (a builtin, code compiled from a string)."""
    from django.db.migrations.operations.special import RunPython

    target = inspect.unwrap(getattr(func, "func", func))  # functools.partial: its function
    if target is RunPython.noop:
        return {
            "role": role,
            "name": "RunPython.noop",
            "path": "",
            "line": None,
            "source": "",
            "error": "Django's RunPython.noop: does nothing.",
        }
    name = getattr(target, "__qualname__", None) or repr(target)
    module = getattr(target, "__module__", None)
    found: dict[str, Any] = {
        "role": role,
        "name": f"{module}.{name}" if module else name,
        "path": "",
        "line": None,
        "source": "",
        "error": "",
    }
    try:
        found["path"] = _display_path(inspect.getsourcefile(target) or "")
        lines, start = inspect.getsourcelines(target)
    except (OSError, TypeError) as exc:
        found["error"] = f"Python cannot show its source ({exc})."
        return found
    source = textwrap.dedent("".join(lines))
    if len(source) > _SOURCE_LIMIT:
        source = source[:_SOURCE_LIMIT] + f"\n# … cut at {_SOURCE_LIMIT:,} characters"
    found["line"] = start or 1
    found["source"] = source
    return found


def _display_path(path: str) -> str:
    if not path:
        return ""
    relative = os.path.relpath(path)
    return path if relative.startswith("..") else relative
