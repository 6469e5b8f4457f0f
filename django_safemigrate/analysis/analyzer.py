"""Walk a plan once and judge every operation of the selected migrations.

The project state is carried forward through the whole graph in one pass, the
way Django's executor does, so a thousand migrations cost one walk and each
model is rendered incrementally rather than once per migration.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import inspect
import os
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.migrations import Migration
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.state import ProjectState

from django_safemigrate.analysis.context import (
    MigrationContext,
    OperationContext,
    StatementContext,
    UnparsableSQL,
)
from django_safemigrate.analysis.findings import Finding, Hit, MigrationReport, TableInfo
from django_safemigrate.analysis.registry import (
    Rule,
    iter_migration_checks,
    iter_operation_checks,
    iter_statement_checks,
    rules,
)
from django_safemigrate.analysis.run_order import created_table
from django_safemigrate.analysis.sandbox import rendering
from django_safemigrate.analysis.tenants import where_it_runs
from django_safemigrate.checksum import class_checksum
from django_safemigrate.enums import LockMode, Risk
from django_safemigrate.exceptions import UsageError
from django_safemigrate.scope import package_of
from django_safemigrate.sql import (
    IncrementalState,
    OperationSQL,
    quiet_collector,
    release_retired,
    swappable_names_at_once,
)

Key = tuple[str, str]

#: Attribute of a Migration class: ``{"SM101": "why this is fine here"}``.
ACKNOWLEDGE_ATTRIBUTE = "safemigrate_acknowledge"


@dataclasses.dataclass(frozen=True)
class AnalysisOptions:
    pg_version: int
    small_table_rows: int
    #: Per-rule severity overrides from settings; ``None`` switches a rule off.
    severity_overrides: dict[str, Risk | None] = dataclasses.field(default_factory=dict)
    #: Infer the phase of a migration that declares none (``SAFEMIGRATE['INFER_PHASE']``).
    infer_phase: bool = True
    #: Judge what ``safemigrate`` runs with online execution (``SAFEMIGRATE['ONLINE']``,
    #: and not on a new database); a migration's ``safemigrate_online`` overrides it.
    online: bool = False


def analyse(
    loader: MigrationLoader,
    selected: Iterable[Key],
    connection: BaseDatabaseWrapper,
    options: AnalysisOptions,
    *,
    applied: set[Key],
    table_info: Callable[[str], TableInfo | None] | None = None,
    live: bool = False,
) -> list[MigrationReport]:
    """Reports for ``selected`` migrations, in plan order."""
    reports, _ = analyse_and_walk(
        loader,
        selected,
        connection,
        options,
        applied=applied,
        table_info=table_info,
        live=live,
    )
    return reports


def analyse_and_walk(
    loader: MigrationLoader,
    selected: Iterable[Key],
    connection: BaseDatabaseWrapper,
    options: AnalysisOptions,
    *,
    applied: set[Key],
    table_info: Callable[[str], TableInfo | None] | None = None,
    live: bool = False,
    whole_graph: bool = False,
) -> tuple[list[MigrationReport], ProjectState]:
    """Reports for ``selected`` migrations, in plan order, and the state the walk reached.

    With ``whole_graph`` the walk goes on through every migration, in the order of
    ``loader.project_state()`` (the graph's plan for its leaves), so the state returned is
    the project's current one and SM901 need not walk the history a second time.
    """
    wanted = set(selected)
    lookup = table_info or (lambda _table: None)
    if whole_graph:
        order = _full_order(loader)
    elif wanted:
        order = _plan_order(loader, wanted)
    else:
        order = []
    state: ProjectState = IncrementalState(real_apps=loader.unmigrated_apps)
    facts: dict[str, Any] = {}  # what rules learn from earlier migrations of the walk
    reports = []
    remaining = len(wanted & set(order))
    # One rendering for the whole walk: its guards also cover the migrations walked through
    # without being judged (their operations' state_forwards is Python too).
    with (
        quiet_collector(),
        swappable_names_at_once(),
        rendering(connection, options.pg_version),
    ):
        for key in order:
            migration = loader.graph.nodes[key]
            if key not in wanted:
                state = migration.mutate_state(state, preserve=False)
                release_retired(state)
                continue
            remaining -= 1
            report, state = analyse_migration(
                migration,
                state,
                connection,
                options,
                table_info=lookup,
                live=live,
                applied=key in applied,
                facts=facts,
            )
            reports.append(report)
            release_retired(state)
            if not remaining:
                # Past the last selected migration nothing needs the rendered models (SM901
                # compares model states): the rest of the walk only updates the states.
                state.__dict__.pop("apps", None)
    return reports, state


def _unknown_table(_table: str) -> TableInfo | None:
    return None


def _plan_order(loader: MigrationLoader, wanted: set[Key]) -> list[Key]:
    """Every migration the selected ones depend on, then them, in dependency order.

    The order is the graph's own (:func:`_full_order`), restricted to the selected
    migrations and their ancestors.
    """
    needed: set[Key] = set()
    pending = list(wanted)
    while pending:
        key = pending.pop()
        if key in needed:
            continue
        needed.add(key)
        pending.extend(parent.key for parent in loader.graph.node_map[key].parents)
    return [key for key in _full_order(loader) if key in needed]


def _full_order(loader: MigrationLoader) -> list[Key]:
    """Every migration, leaves in sorted order each preceded by what it needs.

    The same order as concatenating ``graph.forwards_plan(leaf)`` for each leaf and
    keeping first occurrences, computed in one depth-first walk: a plan per leaf (or per
    selected migration) walks the whole history again each time, O(N^2) for N migrations.
    The walk mirrors ``MigrationGraph.iterative_dfs``, with the visited set shared by the
    leaves.
    """
    order: list[Key] = []
    visited: set[Any] = set()
    for leaf in sorted(loader.graph.leaf_nodes()):
        stack = [(loader.graph.node_map[leaf], False)]
        while stack:
            node, processed = stack.pop()
            if node in visited:
                continue
            if processed:
                visited.add(node)
                order.append(node.key)
            else:
                stack.append((node, True))
                stack += [(parent, False) for parent in sorted(node.parents)]
    return order


def analyse_migration(
    migration: Migration,
    state: ProjectState,
    connection: BaseDatabaseWrapper,
    options: AnalysisOptions,
    *,
    table_info: Callable[[str], TableInfo | None],
    live: bool,
    applied: bool,
    facts: dict[str, Any] | None = None,
) -> tuple[MigrationReport, ProjectState]:
    with (
        # A tenant app's migration is judged in a tenant schema, not as the public
        # schema's no-op (django-tenants; see :mod:`.tenants`).
        where_it_runs(connection, migration.app_label) as in_tenant,
        rendering(connection, options.pg_version) as renderer,
    ):
        if in_tenant:
            # The connected schema is not where it runs: its tables say nothing about
            # which tables are new or how big a tenant's are (judged as of unknown size).
            live = False
            table_info = _unknown_table
        operations, state = renderer.render(migration, state)
        # The rules run inside the rendering too: what they read of the live schema goes
        # through its read-only catalog channel, and nothing else can reach the database.
        mctx = MigrationContext(
            facts={} if facts is None else facts,
            migration=migration,
            connection=connection,
            pg_version=options.pg_version,
            table_info=table_info,
            live=live,
            small_table_rows=options.small_table_rows,
            operations=operations,
            catalog=None if in_tenant else getattr(renderer.connection, "catalog", None),
            online=_online_plan(migration, operations, connection, renderer, options),
        )
        lines = _LazyLines(migration)
        acknowledged = acknowledgements(migration)
        findings: list[Finding] = []

        def add(rule: Rule, hits: Iterable[Hit], op: OperationSQL | None, sql: str | None) -> None:
            for hit in hits:
                findings.append(
                    _finding(
                        rule,
                        hit,
                        op,
                        sql,
                        lines=lines,
                        acknowledged=acknowledged,
                        options=options,
                        mctx=mctx,
                        table_info=table_info,
                    )
                )

        for op in operations:
            octx = OperationContext(mctx, op, op.from_state)
            for rule, check in iter_operation_checks(op.operation):
                add(rule, check(op.operation, octx), op, None)
            for statement in op.statements:
                node: Any = statement.tree
                if node is None:
                    node = UnparsableSQL(statement.sql, statement.error or "")
                created = created_table(node)
                if created:
                    # Later statements (the new table's indexes and constraints) touch an
                    # empty table that nothing else uses yet.
                    mctx.created_tables.add(created)
                sctx = StatementContext(octx, statement)
                for rule, statement_check in iter_statement_checks(node):
                    add(rule, statement_check(node, sctx), op, statement.sql)
        for rule, migration_check in iter_migration_checks():
            for hit in migration_check(mctx):
                index = hit.operation_index
                about = operations[index] if index is not None and index < len(operations) else None
                add(rule, [hit], about, None)

        from django_safemigrate.governance.phase import phase_of

        if mctx.online:
            findings = [_judged_online(f, mctx.online) for f in findings]
        findings = [_with_held_locks(f, mctx) for f in findings]
        ordered = tuple(sorted(findings, key=lambda f: (f.operation_index or 0, f.code)))
        phase = phase_of(
            migration, ordered, operations, mctx.created_tables, infer=options.infer_phase
        )
        return (
            MigrationReport(
                app_label=migration.app_label,
                name=migration.name,
                path=migration_path(migration),
                checksum=checksum_of(migration),
                applied=applied,
                atomic=bool(migration.atomic),
                findings=ordered,
                phase=phase.phase,
                phase_reason=phase.reason,
                # The state before each operation served the rules; a report that kept it would
                # keep a copy of the project's model registry per operation alive for the rest of
                # the run (memory, and the garbage collector's time, quadratic in the history).
                operations=tuple(dataclasses.replace(op, from_state=None) for op in operations),
                online=mctx.online,
                package=package_of(migration),
            ),
            state,
        )


def _online_plan(
    migration: Migration,
    operations: list[OperationSQL],
    connection: BaseDatabaseWrapper,
    renderer: Any,
    options: AnalysisOptions,
) -> dict[int, Any]:
    """The online plans ``safemigrate`` would run for ``migration`` (empty when off)."""
    wanted = getattr(migration, "safemigrate_online", None)
    if not (options.online if not isinstance(wanted, bool) else wanted):
        return {}
    from django_safemigrate.online.rewrite import RewriteContext, catalog_facts, rewrite_migration

    context = RewriteContext(
        pg_version=options.pg_version,
        facts=catalog_facts(getattr(renderer.connection, "catalog", None)),
        connection=connection,
        utc=str(getattr(connection, "timezone_name", "UTC")) == "UTC",
    )
    return rewrite_migration(operations, context)


def _judged_online(finding: Finding, online: dict[int, Any]) -> Finding:
    """``finding``, reported as answered when ``safemigrate`` runs its statement online."""
    from django_safemigrate.online.forms import OnlineForm

    plan = online.get(finding.operation_index) if finding.operation_index is not None else None
    if plan is None:
        return finding
    for unit in plan.units:
        if not isinstance(unit, OnlineForm) or finding.code not in unit.resolves:
            continue
        if finding.sql is not None and finding.sql not in {unit.original.sql, unit.source_sql}:
            continue
        steps = [
            {"purpose": s.purpose, "transactional": s.transactional, "sql": list(s.statements)}
            for s in unit.steps
        ]
        how = "; then ".join(s.purpose for s in unit.steps) or unit.note
        return dataclasses.replace(
            finding,
            blocking=False,
            message=f"{finding.message} safemigrate runs it online: {how}.",
            online={"steps": steps, "note": unit.note},
        )
    return finding


def _with_held_locks(finding: Finding, mctx: MigrationContext) -> Finding:
    """``finding``, with the locks earlier statements of its transaction still hold.

    A lock is held until the transaction commits, so while the statement the finding is
    about runs (an index build, a scan, a rewrite, or a wait in the lock queue) the tables
    locked before it in the same transaction stay locked as long: a stronger lock on the
    finding's own table raises its lock; one on another table is named in the message.
    """
    if (
        finding.sql is None
        or finding.operation_index is None
        or finding.online is not None
        or (finding.lock is None and not finding.rewrites_table)
    ):
        return finding
    placed = mctx.run_order.find_sql(finding.operation_index, finding.sql)
    if placed is None:
        return finding
    held = mctx.run_order.held_before(placed)
    own = finding.lock
    notes = []
    named = []
    for h in held:
        if h.table == finding.table:
            if own is None or _rank(h.lock) > _rank(own):
                own = h.lock
                named.append(h)
                reads = "reads and writes" if h.lock.blocks_reads else "writes"
                notes.append(
                    f"{h.table} is already locked in {h.lock} mode by an earlier statement of "
                    f"the same transaction, {h.describe()}, held until it commits: {reads} "
                    "on it wait for as long as this statement runs."
                )
        else:
            named.append(h)
            reads = "reads and writes" if h.lock.blocks_reads else "writes"
            notes.append(
                f"Meanwhile {h.table} stays locked in {h.lock} mode by an earlier statement of "
                f"the same transaction, {h.describe()}: {reads} on it wait as long."
            )
    if not notes:
        return finding
    return dataclasses.replace(
        finding,
        lock=own,
        message=" ".join([finding.message, *notes]),
        held_locks=tuple(
            {
                "table": h.table,
                "lock": h.lock.value,
                "operation_index": h.by.operation_index,
                "sql": h.by.statement.sql,
            }
            for h in named
        ),
    )


def _rank(mode: LockMode) -> int:
    return list(LockMode).index(mode)


def _finding(
    rule: Rule,
    hit: Hit,
    op: OperationSQL | None,
    sql: str | None,
    *,
    lines: _LazyLines,
    acknowledged: dict[str, str],
    options: AnalysisOptions,
    mctx: MigrationContext,
    table_info: Callable[[str], TableInfo | None],
) -> Finding:
    severity = hit.severity or rule.severity
    if rule.code in options.severity_overrides:
        override = options.severity_overrides[rule.code]
        severity = override if override is not None else severity
    info = table_info(hit.table) if hit.table else None
    blocking = hit.blocking
    # A lock on a new or tiny table is over before anyone notices.
    if (
        blocking
        and hit.lock is not None
        and severity is Risk.RISKY
        and (mctx.is_new_table(hit.table) or mctx.is_small_table(hit.table))
    ):
        blocking = False
    index = op.index if op is not None else hit.operation_index
    return Finding(
        code=rule.code,
        rule=rule.name,
        severity=severity,
        message=hit.message,
        hint=hit.hint,
        operation_index=index,
        operation=type(op.operation).__name__ if op is not None else None,
        line=lines.get(index) if index is not None else None,
        table=hit.table,
        lock=hit.lock,
        rewrites_table=hit.rewrites_table,
        sql=sql,
        blocking=blocking,
        table_rows=info.rows if info else None,
        table_bytes=info.bytes if info else None,
        acknowledged=acknowledged.get(rule.code),
        kinds=hit.kinds if hit.kinds is not None else rule.kinds,
    )


def checksum_of(migration: Migration) -> str:
    """``migration_checksum(migration)``, computed once per migration class."""
    return class_checksum(migration)


def acknowledgements(migration: Migration) -> dict[str, str]:
    """``{code: reason}`` from the migration's ``safemigrate_acknowledge``; validated."""
    raw = getattr(migration, ACKNOWLEDGE_ATTRIBUTE, None)
    if raw is None:
        return {}
    where = f"{migration.app_label}.{migration.name}"
    if not isinstance(raw, dict):
        raise UsageError(
            f"{where}: {ACKNOWLEDGE_ATTRIBUTE} must be a dict of rule code to reason, "
            f'e.g. {{"SM101": "the table has 40 rows"}}.'
        )
    known = rules()
    result = {}
    for code, reason in raw.items():
        if code not in known:
            raise UsageError(
                f"{where} acknowledges {code!r}, which is not a rule code. "
                "'python manage.py checkmigrations --list-rules' lists them."
            )
        if not isinstance(reason, str) or not reason.strip():
            raise UsageError(
                f"{where} acknowledges {code} without a reason; give one in words, "
                "so the next reader knows why it is fine here."
            )
        result[code] = reason.strip()
    return result


def migration_path(migration: Migration) -> str | None:
    try:
        path = inspect.getsourcefile(type(migration))
    except TypeError:
        return None
    if path is None:
        return None
    try:
        return os.path.relpath(path)
    except ValueError:
        return path


class _LazyLines:
    """``operation_lines(migration)``, read only if a finding needs a line number."""

    def __init__(self, migration: Migration) -> None:
        self._migration = migration
        self._lines: dict[int, int] | None = None

    def get(self, index: int) -> int | None:
        if self._lines is None:
            self._lines = operation_lines(self._migration)
        return self._lines.get(index)


def operation_lines(migration: Migration) -> dict[int, int]:
    """Line of each element of ``operations = [...]`` in the migration's file."""
    try:
        path = inspect.getsourcefile(type(migration))
    except TypeError:
        return {}
    if not path:
        return {}
    return dict(_lines_in_file(path, os.path.getmtime(path), type(migration).__name__))


@functools.lru_cache(maxsize=4096)
def _lines_in_file(path: str, _mtime: float, class_name: str) -> tuple[tuple[int, int], ...]:
    try:
        with open(path, encoding="utf-8") as handle:
            tree = ast.parse(handle.read())
    except (OSError, SyntaxError, ValueError):
        return ()
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == class_name:
            for item in node.body:
                targets: Sequence[ast.expr] = []
                value = None
                if isinstance(item, ast.Assign):
                    targets, value = item.targets, item.value
                elif isinstance(item, ast.AnnAssign):
                    targets, value = [item.target], item.value
                if any(isinstance(t, ast.Name) and t.id == "operations" for t in targets) and (
                    isinstance(value, ast.List | ast.Tuple)
                ):
                    return tuple((i, elt.lineno) for i, elt in enumerate(value.elts))
    return ()
