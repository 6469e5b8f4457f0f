"""Judge unapplying migrations: the reverse SQL, with the same rules as applying them.

A rollback runs each operation's ``database_backwards``, last operation first: unapplying
an ``AddField`` drops the column and its data, unapplying a ``CreateModel`` drops the
table. The reverse of a migration is rendered as Django's ``Migration.unapply`` would run
it (collect-only, inside the analysis's guards, so nothing reaches the database and no
``RunPython`` code runs), then judged as hand-written SQL: each operation's reverse
statements become a ``RunSQL`` of a stand-in migration, which the ordinary analysis
judges from the state after the migration. ``RunSQL`` is judged the same as the
operations that render it (``tests/rules/test_runsql_parity.py``), so the reverse gets the
same findings a forward migration writing that SQL would get. A reverse that runs Python
(``RunPython``'s ``reverse_code``, an operation that is not SQL) is judged as a data
migration (SM401). Findings point at the operation they reverse.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.migrations import Migration
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.operations.special import RunPython, RunSQL
from django.db.migrations.state import ProjectState

from django_safemigrate import djangocompat
from django_safemigrate.analysis.analyzer import (
    AnalysisOptions,
    _plan_order,
    analyse_migration,
    operation_lines,
)
from django_safemigrate.analysis.findings import MigrationReport, TableInfo
from django_safemigrate.analysis.sandbox import rendering
from django_safemigrate.exceptions import UsageError
from django_safemigrate.sql import IncrementalState, swappable_names_at_once

Key = tuple[str, str]

#: Findings about the forward migration that say nothing about unapplying it.
_FORWARD_ONLY = frozenset({"SM402"})


@dataclasses.dataclass(frozen=True)
class Reversed:
    """One operation of a migration, as unapplying it runs."""

    index: int
    operation: Any
    #: Its reverse statements; ``None`` when it reverses in Python, not SQL.
    statements: tuple[str, ...] | None


def irreversible(migrations: Iterable[Migration]) -> list[str]:
    """``app.name``: operation N (Type) for every operation that cannot be unapplied."""
    found = []
    for migration in migrations:
        for index, operation in enumerate(migration.operations):
            if not operation.reversible:
                found.append(
                    f"{migration.app_label}.{migration.name}: operation {index + 1} "
                    f"({type(operation).__name__}: {operation.describe()})"
                )
    return found


def refuse_irreversible(migrations: Sequence[Migration]) -> None:
    """Stop before unapplying anything when a migration of the plan cannot be unapplied
    (Django would stop at it, after unapplying the ones before it)."""
    found = irreversible(migrations)
    if found:
        raise UsageError(
            "The plan unapplies migrations that cannot be unapplied: "
            + "; ".join(found)
            + ". Nothing was unapplied. Give the operation a reverse (reverse_sql, "
            "reverse_code) in a new release, or restore the database from a backup."
        )


def analyse_backwards(
    loader: MigrationLoader,
    keys: Sequence[Key],
    connection: BaseDatabaseWrapper,
    options: AnalysisOptions,
    *,
    table_info: Callable[[str], TableInfo | None] | None = None,
    live: bool = False,
) -> list[MigrationReport]:
    """Reports on unapplying ``keys`` (in the order given: the unapply plan's)."""
    wanted = set(keys)
    lookup = table_info or (lambda _table: None)
    options = dataclasses.replace(options, online=False)  # rollbacks run as Django runs them
    state: ProjectState = IncrementalState(real_apps=loader.unmigrated_apps)
    reports: dict[Key, MigrationReport] = {}
    with swappable_names_at_once():
        for key in _plan_order(loader, wanted):
            migration = loader.graph.nodes[key]
            if key in wanted:
                after = migration.mutate_state(state.clone(), preserve=False)
                reversed_ops = reverse_operations(migration, state, connection, options)
                reports[key] = _judge(
                    migration,
                    reversed_ops,
                    after,
                    connection,
                    options,
                    table_info=lookup,
                    live=live,
                )
            state = migration.mutate_state(state, preserve=False)
    return [reports[key] for key in keys]


def reverse_operations(
    migration: Migration, before: ProjectState, connection: BaseDatabaseWrapper, options: Any
) -> list[Reversed]:
    """What unapplying ``migration`` runs, operation by operation, last first.

    Mirrors ``Migration.unapply``: the state before and after each operation, then each
    operation's ``database_backwards`` in reverse order, collected, not executed.
    """
    from django.db.migrations.operations.special import SeparateDatabaseAndState

    states = []
    new_state = before.clone()
    for operation in migration.operations:
        new_state = new_state.clone()
        old_state = new_state.clone()
        operation.state_forwards(migration.app_label, new_state)
        states.append((operation, old_state, new_state))
    found: list[Reversed] = []
    with (
        rendering(connection, options.pg_version) as renderer,
        renderer.connection.schema_editor(collect_sql=True, atomic=False) as editor,
    ):
        owners: dict[int, int] = {}
        statements: dict[int, list[str]] = {}
        for index in reversed(range(len(states))):
            operation, to_state, from_state = states[index]
            if not operation.reduces_to_sql:
                found.append(Reversed(index, operation, None))
                continue
            if isinstance(operation, RunSQL) and not isinstance(
                operation, SeparateDatabaseAndState
            ):
                reverse = operation.reverse_sql
                sql = [reverse] if isinstance(reverse, str) else list(reverse or ())
                statements[index] = [s if isinstance(s, str) else s[0] for s in sql if s]
                found.append(Reversed(index, operation, ()))
                continue
            before_count = djangocompat.collected_mark(editor)
            operation.database_backwards(migration.app_label, editor, from_state, to_state)
            statements[index] = djangocompat.collected_since(editor, before_count)
            djangocompat.drop_collected_since(editor, before_count)
            for deferred in djangocompat.deferred_statements(editor):
                owners.setdefault(id(deferred), index)
            found.append(Reversed(index, operation, ()))
        for deferred in djangocompat.deferred_statements(editor):
            owner = owners.get(id(deferred), found[-1].index if found else 0)
            before_count = djangocompat.collected_mark(editor)
            editor.execute(deferred, None)
            collected = djangocompat.collected_since(editor, before_count)
            statements.setdefault(owner, []).extend(collected)
            djangocompat.drop_collected_since(editor, before_count)
        djangocompat.clear_deferred(editor)
    return [
        dataclasses.replace(r, statements=tuple(statements.get(r.index, ())))
        if r.statements is not None
        else r
        for r in found
    ]


class ReverseSQL(RunSQL):
    """The reverse statements of one operation, standing in for it in the analysis."""

    def __init__(self, statements: list[Any], original: Any) -> None:
        super().__init__(statements, RunSQL.noop)
        self.original = original

    def describe(self) -> str:
        return f"Unapply: {self.original.describe()}"


class ReversePython(RunPython):
    """What unapplying a non-SQL operation runs, standing in for it in the analysis."""

    def __init__(self, code: Callable[..., None], original: Any) -> None:
        super().__init__(code, RunPython.noop)
        self.original = original

    def describe(self) -> str:
        return f"Unapply: {self.original.describe()}"


def _python_reverse(operation: Any) -> Callable[..., None]:
    """A stand-in for what unapplying a non-SQL operation runs, named after it."""
    code = getattr(operation, "reverse_code", None)
    if isinstance(operation, RunPython) and code is not None:
        return code  # type: ignore[no-any-return]

    def unapply(apps: Any, schema_editor: Any) -> None:  # pragma: no cover - never run
        raise AssertionError("a stand-in for the analysis, never run")

    unapply.__qualname__ = unapply.__name__ = f"{type(operation).__name__}.database_backwards"
    return unapply


def _judge(
    migration: Migration,
    reversed_ops: list[Reversed],
    after: ProjectState,
    connection: BaseDatabaseWrapper,
    options: AnalysisOptions,
    *,
    table_info: Callable[[str], TableInfo | None],
    live: bool,
) -> MigrationReport:
    stand_in = copy.copy(migration)
    stand_in.operations = [  # type: ignore[misc]
        ReverseSQL(list(r.statements), r.operation)
        if r.statements is not None
        else ReversePython(_python_reverse(r.operation), r.operation)
        for r in reversed_ops
    ]
    report, _ = analyse_migration(
        stand_in,
        after,
        connection,
        options,
        table_info=table_info,
        live=live,
        applied=True,
    )
    lines = operation_lines(migration)
    findings = []
    for finding in report.findings:
        if finding.code in _FORWARD_ONLY:
            continue
        if finding.operation_index is not None:
            original = reversed_ops[finding.operation_index]
            finding = dataclasses.replace(  # noqa: PLW2901
                finding,
                operation_index=original.index,
                operation=f"{type(original.operation).__name__} (unapplied)",
                line=lines.get(original.index),
            )
        findings.append(finding)
    return dataclasses.replace(report, findings=tuple(findings))
