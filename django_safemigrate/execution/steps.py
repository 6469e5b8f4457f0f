"""Split a migration into steps: what runs in one transaction, what runs alone.

PostgreSQL refuses some statements inside a transaction block (``CREATE INDEX
CONCURRENTLY``, ``VACUUM``, …; see :mod:`django_safemigrate.transactions`).
Each such statement becomes a step of its own. In an atomic migration,
consecutive operations that can run in a transaction are grouped into one
transactional step; in an ``atomic = False`` migration each operation is a step
of its own, in order, as its author wrote it: ``ADD CONSTRAINT … NOT VALID``
commits (releasing its strong lock) before a later ``VALIDATE CONSTRAINT``
starts. A ``RunSQL`` mixing both kinds is split statement by statement. The
decision is made from the SQL the backend renders (parse trees), not from
operation class names.

A failure can then leave at most one step undone, never half a step, and a
rerun resumes at the first unfinished step.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from django.db.migrations import Migration

from django_safemigrate.sql import OperationSQL, Statement

if TYPE_CHECKING:
    from django_safemigrate.online.rewrite import OnlineOperation


class StepKind(enum.StrEnum):
    #: Runs in one transaction: all of it or nothing.
    TRANSACTIONAL = "transactional"
    #: A statement PostgreSQL refuses inside a transaction; runs alone, in autocommit.
    NON_TRANSACTIONAL = "non_transactional"
    #: Python the author asked to run outside a transaction (``RunPython`` in a
    #: non-atomic migration, or ``atomic=False``): runs as written, in autocommit.
    AUTOCOMMIT_PYTHON = "autocommit_python"


@dataclasses.dataclass(frozen=True)
class StepPart:
    """One operation of a step, or a slice of a ``RunSQL``'s statements."""

    operation_index: int
    #: The statements to run instead of the operation (a split ``RunSQL``, or a
    #: non-transactional statement); ``None`` runs the operation itself.
    statements: tuple[str, ...] | None = None


@dataclasses.dataclass(frozen=True)
class Step:
    index: int
    kind: StepKind
    parts: tuple[StepPart, ...]
    description: str

    @property
    def operation_indexes(self) -> tuple[int, ...]:
        return tuple(dict.fromkeys(p.operation_index for p in self.parts))


def _refuses(statement: Statement, pg_version: int) -> str | None:
    # Imported here: it loads the SQL parser, which the one-transaction path never needs.
    from django_safemigrate.transactions import refuses_transaction

    if statement.tree is None:
        return None
    return refuses_transaction(statement.tree, pg_version)


def _validates(statement: Statement) -> bool:
    """A ``VALIDATE CONSTRAINT`` the schema editor emitted (``RunSQL`` runs as written)."""
    from pglast import ast
    from pglast.enums import AlterTableType

    node = statement.tree
    if statement.handwritten or not isinstance(node, ast.AlterTableStmt) or not node.cmds:
        return False
    return all(
        isinstance(c, ast.AlterTableCmd) and c.subtype == AlterTableType.AT_ValidateConstraint
        for c in node.cmds
    )


def _python_outside_transaction(migration: Migration, operation: Any) -> bool:
    if operation.reduces_to_sql:
        return False
    atomic = getattr(operation, "atomic", None)
    if atomic is None:
        return not migration.atomic
    return not atomic


def plan_steps(
    migration: Migration,
    operations: Sequence[OperationSQL],
    pg_version: int,
    online: Mapping[int, OnlineOperation] | None = None,
) -> list[Step]:
    """The steps of ``migration``, from its rendered operations.

    ``online``: the online plans of the operations that have one (by operation index;
    :func:`django_safemigrate.online.rewrite.rewrite_migration`). Each step of an online
    form becomes a step of its own, so that the short transaction taking a strong lock
    has committed before the long, weak-lock statement that follows it starts.
    """
    steps: list[Step] = []
    pending: list[StepPart] = []

    def close_transactional() -> None:
        if pending:
            steps.append(
                Step(
                    len(steps),
                    StepKind.TRANSACTIONAL,
                    tuple(pending),
                    _describe(migration, pending),
                )
            )
            pending.clear()

    for op in operations:
        operation = op.operation
        if _python_outside_transaction(migration, operation):
            close_transactional()
            part = StepPart(op.index)
            steps.append(
                Step(len(steps), StepKind.AUTOCOMMIT_PYTHON, (part,), _describe(migration, [part]))
            )
            continue
        if not migration.atomic:
            # No transaction spans two operations of a non-atomic migration.
            close_transactional()
        if op.refused or op.render_error or (not migration.atomic and not op.statements):
            # The operation reaches for the database itself (or could not be rendered),
            # so its rendered SQL is not all it runs: splitting it would run only what
            # was rendered. It runs whole, as Django would run it: inside the
            # migration's transaction when the migration is atomic, else in autocommit.
            # An operation of a non-atomic migration that renders nothing (a database
            # router makes it a no-op here: a tenant app's AddIndexConcurrently in the
            # public schema) runs in autocommit too: some refuse any transaction before
            # they ask the router.
            part = StepPart(op.index)
            if migration.atomic:
                pending.append(part)
            else:
                steps.append(
                    Step(
                        len(steps),
                        StepKind.AUTOCOMMIT_PYTHON,
                        (part,),
                        _describe(migration, [part]),
                    )
                )
            continue
        plan = online.get(op.index) if online else None
        if plan is not None:
            _plan_online(migration, op, plan, pg_version, steps, pending, close_transactional)
            continue
        refusing = [s for s in op.statements if _refuses(s, pg_version) or _validates(s)]
        if not refusing:
            pending.append(StepPart(op.index))
            continue
        # Split the operation at each statement that must run alone.
        batch: list[str] = []
        for statement in op.statements:
            reason = _refuses(statement, pg_version)
            if reason is None and not _validates(statement):
                batch.append(statement.sql)
                continue
            if batch:
                pending.append(StepPart(op.index, tuple(batch)))
                batch = []
            close_transactional()
            if reason is None:
                # A backend's own NOT VALID, then VALIDATE (django-pg-zero-downtime-
                # migrations): the strong lock of the first must be committed and gone
                # before the scan of the second, so the scan is a transaction of its own.
                steps.append(
                    Step(
                        len(steps),
                        StepKind.TRANSACTIONAL,
                        (StepPart(op.index, (statement.sql,)),),
                        f"{_operation_name(operation)}: {_shorten(statement.sql)}",
                    )
                )
                continue
            steps.append(
                Step(
                    len(steps),
                    StepKind.NON_TRANSACTIONAL,
                    (StepPart(op.index, (statement.sql,)),),
                    f"{reason} ({_operation_name(operation)}): {_shorten(statement.sql)}",
                )
            )
        if batch:
            pending.append(StepPart(op.index, tuple(batch)))
    close_transactional()
    return steps


def _plan_online(  # noqa: PLR0917 - the planner's own state, passed down
    migration: Migration,
    op: OperationSQL,
    plan: OnlineOperation,
    pg_version: int,
    steps: list[Step],
    pending: list[StepPart],
    close_transactional: Callable[[], None],
) -> None:
    """Steps for an operation with an online plan (see :func:`plan_steps`)."""
    from django_safemigrate.online.forms import NotOnline, OnlineForm

    name = _operation_name(op.operation)
    for unit in plan.units:
        if isinstance(unit, OnlineForm):
            if not unit.steps:
                continue
            close_transactional()
            for online_step in unit.steps:
                kind = (
                    StepKind.TRANSACTIONAL
                    if online_step.transactional
                    else StepKind.NON_TRANSACTIONAL
                )
                steps.append(
                    Step(
                        len(steps),
                        kind,
                        (StepPart(op.index, online_step.statements),),
                        f"{name}, online: {online_step.purpose}: "
                        + "; ".join(" ".join(sql.split()) for sql in online_step.statements),
                    )
                )
            continue
        # A statement that runs as emitted (a NotOnline one runs so only once reviewed).
        statement = unit.original if isinstance(unit, NotOnline) else unit
        reason = _refuses(statement, pg_version)
        if reason is None:
            last = pending[-1].statements if pending else None
            if last and pending[-1].operation_index == op.index:
                pending[-1] = StepPart(op.index, (*last, statement.sql))
            else:
                pending.append(StepPart(op.index, (statement.sql,)))
            continue
        close_transactional()
        steps.append(
            Step(
                len(steps),
                StepKind.NON_TRANSACTIONAL,
                (StepPart(op.index, (statement.sql,)),),
                f"{reason} ({name}): {_shorten(statement.sql)}",
            )
        )
    if not migration.atomic:
        close_transactional()


def plan_fingerprint(steps: Sequence[Step]) -> str:
    """A hash of the split, stored with each finished step to detect a changed split."""
    payload = [
        [s.kind.value, [[p.operation_index, list(p.statements or [])] for p in s.parts]]
        for s in steps
    ]
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
    return f"sha256:{digest}"


def _operation_name(operation: Any) -> str:
    return type(operation).__name__


def _describe(migration: Migration, parts: Sequence[StepPart]) -> str:
    names = []
    for part in parts:
        operation = migration.operations[part.operation_index]
        label = _operation_name(operation)
        if part.statements is not None:
            label += (
                f" ({len(part.statements)} statement{'s' if len(part.statements) != 1 else ''})"
            )
        names.append(label)
    return ", ".join(names)


def _shorten(sql: str, limit: int = 80) -> str:
    text = " ".join(sql.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _part_statements(part: StepPart, rendered: Sequence[Statement]) -> list[Statement]:
    """What ``part`` runs: its own statements (a split, or an online form), else the
    operation's ``rendered`` ones."""
    if part.statements is None:
        return list(rendered)
    known = {s.sql: s for s in rendered}
    found: list[Statement] = []
    for sql in part.statements:
        found.extend([known[sql]] if sql in known else _parse(sql))
    return found


def _parse(sql: str) -> list[Statement]:
    from django_safemigrate.sql import parse

    return parse(sql)


def describe_step_locks(
    step: Step, operations: Sequence[OperationSQL], policy: Any, pg_version: int
) -> str:
    """``lock ACCESS EXCLUSIVE, lock_timeout 0.1s to 2s over 50 attempts`` for the
    strongest statement of a step."""
    from django_safemigrate.execution.locks import statement_lock

    locks = []
    timeouts = set()
    for part in step.parts:
        op = operations[part.operation_index]
        for statement in _part_statements(part, op.statements):
            if statement.tree is not None:
                lock = statement_lock(statement.tree)
                if lock is not None:
                    locks.append(lock)
            timeouts.add(policy.timeouts_for(statement.sql, pg_version).lock_timeout)
        if not op.reduces_to_sql:
            timeouts.add(policy.strong.lock_timeout)
    from django_safemigrate.enums import LockMode

    strongest = max(locks, key=list(LockMode).index) if locks else None
    lock_text = f"lock {strongest.value}" if strongest else "no table lock"
    limit = max(timeouts) if timeouts else policy.strong.lock_timeout
    return f"{lock_text}, {policy.describe_lock_timeout(step, limit)}"


#: The table lock Django's own operations take on an existing table (for the progress
#: output and the ledger of one-transaction migrations, which are not rendered).
_OPERATION_LOCKS = {
    "CreateModel": None,
    "AddIndex": "SHARE",
    "RunPython": "row locks",
    "AlterModelOptions": None,
    "AlterModelManagers": None,
}


def strongest_lock(
    migration: Migration, step: Step, rendered: dict[int, Sequence[Statement]]
) -> str:
    """The strongest table lock of a step, for people: ``"ACCESS EXCLUSIVE"``, ``"none"``."""
    from django_safemigrate.enums import LockMode
    from django_safemigrate.execution.locks import statement_lock

    locks: list[LockMode] = []
    extra: set[str] = set()
    for part in step.parts:
        operation = migration.operations[part.operation_index]
        statements = rendered.get(part.operation_index)
        if statements is None:
            name = type(operation).__name__
            label = _OPERATION_LOCKS.get(name, "ACCESS EXCLUSIVE")
            if label in {m.value for m in LockMode}:
                locks.append(LockMode(label))
            elif label:
                extra.add(label)
            continue
        if not operation.reduces_to_sql:
            extra.add("row locks")
        chosen = _part_statements(part, statements)
        for statement in chosen:
            if statement.tree is None:
                continue
            lock = statement_lock(statement.tree)
            if lock is not None:
                locks.append(lock)
    if locks:
        return max(locks, key=list(LockMode).index).value
    return ", ".join(sorted(extra)) or "none"
