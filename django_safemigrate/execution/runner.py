"""Apply one migration step by step: timeouts per statement, retries, resume.

* Each transactional step runs in one transaction; its record (and, for the
  last step, Django's ``django_migrations`` row and the ledger's, all written by
  one statement) commits with it, so a crash can never leave a step half-done
  or a migration recorded as applied when it is not.
* A non-transactional step runs alone in autocommit. A concurrent index build
  that failed or was killed leaves an INVALID index; before (re)building, an
  invalid index of that name is dropped concurrently and a valid one means the
  build already finished. ``IF NOT EXISTS`` never keeps an invalid index.
* Every statement runs under the lock and statement timeouts of its kind:
  short for strong locks, none for concurrent builds and ``VALIDATE
  CONSTRAINT`` (they legitimately wait for old snapshots). Inside transactions
  they are ``SET LOCAL``, so they end with the transaction; around autocommit
  steps they are set and reset on a session of our own, and never set through a
  connection pooler (:meth:`StepRunner._session_defaults`).
* The migration lock is checked before every step and, inside a transactional
  step, just before its COMMIT: a step that finished after the lock was lost is
  rolled back rather than recorded while another runner may be working.
* A transactional step that fails on a lock timeout (55P03) or a deadlock
  (40P01) rolled back whole, so it is tried again under the next pair of its
  lock-retry schedule (:mod:`.retries`): short lock waits first, growing, with
  sleeps in between that let the queries queued behind it through. A step
  outside a transaction is tried again only when its statement is safe to run
  twice.
* A step that fails for good is kept as :attr:`StepRunner.failure`, with what
  it left committed when it ran outside a transaction, for the failure message.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from django.db import DatabaseError, Error, transaction
from django.db.migrations import Migration
from django.db.migrations.state import ProjectState
from django.utils import timezone

from django_safemigrate.conf import (
    SECONDS,
    SettingsProblem,
    check_exhausted,
    check_lock_retries,
    check_retries,
    check_seconds,
    schedule_from_retries,
)
from django_safemigrate.exceptions import Blocked, SafemigrateError, UsageError
from django_safemigrate.execution.committed import CommittedWrites, watch_committed
from django_safemigrate.execution.events import RunEvents
from django_safemigrate.execution.ledger import APP_LABEL, StepEntry
from django_safemigrate.execution.preflight import (
    OldTransactionWatch,
    find_blockers,
    relation_ref,
    strong_lock_tables,
)
from django_safemigrate.execution.retries import (
    Attempt,
    LockRetries,
    attempt_line,
    describe_holders,
    failed_attempts,
    not_retried,
    safe_to_run_again,
    seconds,
)
from django_safemigrate.execution.steps import (
    Step,
    StepKind,
    StepPart,
    plan_fingerprint,
    plan_steps,
    strongest_lock,
)
from django_safemigrate.execution.walk import apply_operations, fallback_reason, uses_models
from django_safemigrate.sql import IncrementalState, parse, state_before, statement_text, walkable

if TYPE_CHECKING:
    from django_safemigrate.execution.executor import LedgerExecutor


class PreflightStop(SafemigrateError):
    """Old transactions use the tables a step would lock, and the policy says stop."""


#: SQLSTATEs after which a rolled-back transactional step is simply tried again.
RETRYABLE = {"55P03": "lock timeout", "40P01": "deadlock"}

#: Attribute of a Migration class overriding timeouts and retries for it, e.g.
#: ``safemigrate_timeouts = {"lock_retries": [(0.5, 1)] * 10, "statement_timeout": 600}``.
OVERRIDE_ATTRIBUTE = "safemigrate_timeouts"


@dataclasses.dataclass(frozen=True)
class Timeouts:
    """Seconds; 0 means no limit."""

    lock_timeout: float
    statement_timeout: float

    def sql_values(self) -> tuple[str, str]:
        return f"{int(self.lock_timeout * 1000)}ms", f"{int(self.statement_timeout * 1000)}ms"


@dataclasses.dataclass(frozen=True)
class RunnerPolicy:
    """Timeouts and retries for one migration (settings, then the migration's override)."""

    #: Statements that take strong locks, RunSQL and RunPython; their lock timeout is
    #: the one of the attempt being run (:meth:`for_attempt`), at first the first one.
    strong: Timeouts
    #: Statements that wait for old snapshots by design: outside the schedule.
    relaxed: Timeouts
    lock_retries: LockRetries

    @classmethod
    def for_migration(cls, settings: Any, migration: Migration) -> RunnerPolicy:
        override = migration_override(migration)
        statement = float(override.get("statement_timeout", settings.statement_timeout))
        if "lock_retries" in override:
            schedule = override["lock_retries"]
        elif "lock_timeout" in override or "retries" in override:
            # The older override: one lock timeout, exponential backoff.
            schedule = schedule_from_retries(
                float(override.get("lock_timeout", settings.lock_timeout)),
                int(override.get("retries", settings.retries)),
                settings.retry_backoff,
                settings.retry_backoff_max,
            )
        else:
            schedule = settings.lock_retries
        lock_retries = LockRetries(
            schedule, override.get("lock_retries_exhausted", settings.lock_retries_exhausted)
        )
        first = lock_retries.attempts()[0]
        return cls(
            strong=Timeouts(first.lock_timeout, statement),
            relaxed=Timeouts(0, float(override.get("statement_timeout", 0))),
            lock_retries=lock_retries,
        )

    def for_attempt(self, attempt: Attempt) -> RunnerPolicy:
        """This policy with ``attempt``'s lock timeout for the strong statements."""
        strong = Timeouts(attempt.lock_timeout, self.strong.statement_timeout)
        return dataclasses.replace(self, strong=strong)

    def describe_lock_timeout(self, step: Step, limit: float) -> str:
        """The lock timeouts of ``step`` whose longest statement timeout is ``limit``."""
        if not limit:
            return "no lock_timeout"
        if step.kind is not StepKind.TRANSACTIONAL:
            once = self.lock_retries.attempts(retried=False)[0].lock_timeout
            return f"lock_timeout {seconds(once)}" if once else "no lock_timeout"
        return self.lock_retries.describe()

    def timeouts_for(self, sql: str, pg_version: int) -> Timeouts:
        """Concurrent builds and ``VALIDATE CONSTRAINT`` wait for old snapshots by design."""
        statements = parse(sql)
        if statements and all(_relaxed(s.tree, pg_version) for s in statements):
            return self.relaxed
        return self.strong


def migration_override(migration: Migration) -> dict[str, Any]:
    """The migration's ``safemigrate_timeouts``, validated like the settings they override.

    Raises :class:`UsageError` naming the migration: commands check every migration
    before the lock is taken, so a bad value stops the run before anything is applied.
    """
    raw = getattr(migration, OVERRIDE_ATTRIBUTE, None)
    if raw is None:
        return {}
    name = f"{migration.app_label}.{migration.name}"
    where = f"Fix {OVERRIDE_ATTRIBUTE} in the migration file. Nothing was applied."
    if not isinstance(raw, Mapping):
        raise UsageError(
            f"Migration {name} sets {OVERRIDE_ATTRIBUTE} to {raw!r}, but it must be a dict "
            f"such as {{'lock_timeout': 10, 'retries': 2}}. {where}"
        )
    unknown = sorted(str(key) for key in raw if key not in _OVERRIDE_KEYS)
    if unknown:
        raise UsageError(
            f"Migration {name} sets {OVERRIDE_ATTRIBUTE} with unknown key(s) "
            f"{', '.join(repr(k) for k in unknown)}; the keys are "
            f"{', '.join(repr(k) for k in _OVERRIDE_KEYS)}. {where}"
        )
    older = [key for key in ("lock_timeout", "retries") if key in raw]
    if "lock_retries" in raw and older:
        raise UsageError(
            f"Migration {name} sets {OVERRIDE_ATTRIBUTE} with both 'lock_retries' and "
            f"{' and '.join(repr(k) for k in older)}, which say the same thing two ways. "
            f"Keep 'lock_retries' (the schedule of its attempts), or keep "
            f"{' and '.join(repr(k) for k in older)} (one lock timeout, exponential backoff). "
            f"{where}"
        )
    values: dict[str, Any] = {}
    try:
        for key, value in raw.items():
            what = f"Migration {name}'s {OVERRIDE_ATTRIBUTE}['{key}']"
            if key == "retries":
                values[key] = check_retries(what, value)
            elif key == "lock_retries":
                values[key] = check_lock_retries(what, value)
            elif key == "lock_retries_exhausted":
                values[key] = check_exhausted(what, value)
            else:
                values[key] = check_seconds(what, value, SECONDS[_OVERRIDE_KEYS[key]], 10)
    except SettingsProblem as exc:
        raise UsageError(f"{exc.message} {where}") from None
    return values


#: The keys of ``safemigrate_timeouts``, and the settings whose range they share.
_OVERRIDE_KEYS = {
    "lock_retries": "LOCK_RETRIES",
    "lock_retries_exhausted": "LOCK_RETRIES_EXHAUSTED",
    "statement_timeout": "STATEMENT_TIMEOUT",
    "lock_timeout": "LOCK_TIMEOUT",
    "retries": "RETRIES",
}


@dataclasses.dataclass(frozen=True)
class StepFailure:
    """The step that failed for good, and what it left behind (for the failure message)."""

    migration: str
    index: int
    step_count: int
    kind: StepKind
    description: str
    #: What stays committed, in words ("3 rows inserted into shop_item"); "" for nothing.
    committed: str = ""
    #: How its attempts went, in a sentence; "" when it failed on its only attempt.
    attempts: str = ""

    @property
    def label(self) -> str:
        return f"step {self.index + 1}/{self.step_count} ({self.description})"

    def consequences(self) -> str:
        """What became of the failed step, and what to do: sentences for the message."""
        return f"{self.attempts} {self._left()}" if self.attempts else self._left()

    def _left(self) -> str:
        if self.kind is StepKind.TRANSACTIONAL:
            return (
                f"The failed {self.label} ran in a transaction and was rolled back; finished "
                "steps and the migrations applied before it stay applied and recorded. Fix the "
                "cause and run safemigrate again to resume at that step."
            )
        if self.kind is StepKind.AUTOCOMMIT_PYTHON:
            wrote = (
                f"what it wrote before the error stays committed: {self.committed}"
                if self.committed
                else "whatever it wrote before the error stays committed (no committed write "
                "was seen)"
            )
            return (
                f"The failed {self.label} ran outside a transaction, as the migration asks "
                f"(atomic = False), so nothing undid it: {wrote}. Finished steps and the "
                "migrations applied before it stay applied and recorded. Fix the cause and "
                "either undo those writes or make the function skip work already done, then "
                "run safemigrate again: it resumes by running this step again from its start."
            )
        left = (
            f"PostgreSQL undid the failed statement itself, but {self.committed}"
            if self.committed
            else "PostgreSQL undid the failed statement itself; nothing of this step stays"
        )
        return (
            f"The failed {self.label} ran outside a transaction (PostgreSQL refuses it inside "
            f"one), so no transaction could undo it as a whole: {left}. Finished steps and the "
            "migrations applied before it stay applied and recorded. Fix the cause and run "
            "safemigrate again to resume at that step."
        )


def _relaxed(node: Any, pg_version: int) -> bool:
    from pglast import ast
    from pglast.enums import AlterTableType

    from django_safemigrate.transactions import refuses_transaction

    if node is None:
        return False
    if refuses_transaction(node, pg_version):
        return True
    if isinstance(node, ast.AlterTableStmt) and node.cmds:
        return all(
            isinstance(c, ast.AlterTableCmd) and c.subtype == AlterTableType.AT_ValidateConstraint
            for c in node.cmds
        )
    return False


def sqlstate(exc: BaseException) -> str | None:
    cause: BaseException | None = exc
    while cause is not None:
        state = getattr(cause, "sqlstate", None)
        if state:
            return str(state)
        cause = cause.__cause__
    return None


class StepRunner:
    """Applies migrations in steps for a :class:`LedgerExecutor`."""

    def __init__(
        self,
        executor: LedgerExecutor,
        *,
        settings: Any,
        pg_version: int,
        report: Callable[[str], None],
        notify: Callable[[str], None],
    ) -> None:
        self.executor = executor
        self.notify = notify
        self.connection = executor.connection
        self.settings = settings
        self.pg_version = pg_version
        self.report = report
        self._rendered: dict[int, Any] = {}
        self._whole = False
        self._state_before: ProjectState | None = None
        self._watch = OldTransactionWatch(self.connection, settings.preflight_min_age)
        #: The step that failed for good, once one has.
        self.failure: StepFailure | None = None
        #: What the running autocommit ``RunPython`` step has committed so far.
        self._committed = CommittedWrites()
        #: (connection, pooled, defaults) of the migration connection's session, read once.
        self._defaults: tuple[int, bool, Timeouts] | None = None
        #: The online plans of the migration being applied (by operation index).
        self.online_plan: dict[int, Any] = {}
        #: Whether the run began on a database with nothing applied (read once).
        self._fresh: bool | None = None

    # -- planning ------------------------------------------------------------------------

    def steps_for(
        self, migration: Migration, state: ProjectState, *, online: bool | None = None
    ) -> list[Step]:
        """The steps of ``migration``: in online forms unless ``online`` is ``False`` or
        the settings, the migration or a new database say otherwise."""
        online = self._online(migration) if online is None else online
        self._whole = one_transaction(migration, self.connection, online=online)
        self.online_plan = {}
        if self._whole:
            # Nothing in it can refuse a transaction: one step, no need to render.
            self._rendered = {}
            parts = tuple(StepPart(i) for i in range(len(migration.operations)))
            if not parts:
                return []
            names = ", ".join(type(op).__name__ for op in migration.operations)
            return [Step(0, StepKind.TRANSACTIONAL, parts, names)]
        # Rendered inside the analysis's guards: an operation that reaches for the
        # database itself must run once, when the step runs, not also while its steps
        # are planned (what it tried is kept on its rendering: ``OperationSQL.refused``).
        from django_safemigrate.analysis.sandbox import rendering

        with rendering(self.connection, self.pg_version) as renderer:
            operations, _ = renderer.render(migration, copy_of(state, migration))
            if online:
                from django_safemigrate.online.rewrite import rewrite_migration

                self.online_plan = rewrite_migration(
                    operations, self.rewrite_context(renderer.connection)
                )
        self._rendered = {op.index: op.statements for op in operations}
        return plan_steps(migration, operations, self.pg_version, self.online_plan)

    def _online(self, migration: Migration) -> bool:
        """Online forms for this migration: the setting (or the migration's own attribute),
        on a database that held something before this run (a new one has no traffic)."""
        from django_safemigrate.online import online_for

        if not online_for(self.settings, migration):
            return False
        if self._fresh is None:
            # The command decided (a first deploy, or one continued after an interruption);
            # otherwise: nothing applied but this app's own tables.
            marked = self.executor.ledger.first_deploy
            applied = self.executor.loader.applied_migrations
            self._fresh = (
                marked
                if marked is not None
                else all(app_label == APP_LABEL for app_label, _ in applied)
            )
        return not self._fresh

    def rewrite_context(self, rendering_connection: Any) -> Any:
        """What the online rewrite needs: the server, the catalogs."""
        from django_safemigrate.online.rewrite import RewriteContext, catalog_facts

        return RewriteContext(
            pg_version=self.pg_version,
            facts=catalog_facts(getattr(rendering_connection, "catalog", None)),
            connection=self.connection,
            strict=True,
            utc=str(self.connection.timezone_name) == "UTC",
        )

    # -- applying ------------------------------------------------------------------------

    @property
    def events(self) -> RunEvents:
        """The run's structured events (:mod:`.events`)."""
        return self.executor.ledger.events

    def apply(self, migration: Migration, state: ProjectState) -> ProjectState:
        steps = self.steps_for(migration, state)
        fingerprint = plan_fingerprint(steps)
        checksum = self.executor.checksum_of(migration)
        # A single step commits with the migration's record: nothing to resume.
        try:
            done = (
                self.executor.ledger.finished_steps(migration, checksum, fingerprint)
                if len(steps) > 1
                else set()
            )
        except Blocked:
            if not self.online_plan:
                raise
            # Partly applied in its plain form (online execution was off, or the database
            # was new, when it began): it resumes in that form rather than mixing two.
            steps = self.steps_for(migration, state, online=False)
            fingerprint = plan_fingerprint(steps)
            done = self.executor.ledger.finished_steps(migration, checksum, fingerprint)
            self.notify(
                f"    {migration.app_label}.{migration.name} was partly applied in its plain "
                "form; it resumes in that form"
            )
        policy = RunnerPolicy.for_migration(self.settings, migration)
        self._state_before = state
        walk = _Walk(migration, state)
        name = f"{migration.app_label}.{migration.name}"
        if not steps:
            # No operations (a dependency placeholder): only the record to write.
            with transaction.atomic(using=self.connection.alias):
                self.executor.ledger.check_lock(f"before recording {name}")
                self.executor.record_applied_now(migration)
            return walk.state
        for step in steps:
            rendered = None if self._whole else self._rendered
            lock = strongest_lock(migration, step, rendered or {})
            label = (
                f"step {step.index + 1}/{len(steps)} {step.kind.value} (lock {lock}): "
                f"{step.description}"
            )
            fields = {
                "migration": name,
                "step": step.index + 1,
                "step_count": len(steps),
                "kind": step.kind.value,
                "lock_mode": lock,
                "description": step.description,
            }
            if step.index in done:
                for index in step.operation_indexes:
                    walk.advance(index)
                self.report(f"    {label}: already done, skipped")
                self.events.step_end(outcome="skipped", duration=0.0, attempts=0, **fields)
                continue
            self._preflight(migration, step, label)
            entry = StepEntry(
                app_label=migration.app_label,
                name=migration.name,
                checksum=checksum,
                plan=fingerprint,
                index=step.index,
                step_count=len(steps),
                kind=step.kind.value,
                description=step.description,
                started_at=timezone.now(),
                lock=lock,
            )
            first = policy.lock_retries.attempts(retried=not not_retried(step))
            self.events.step_start(
                lock_timeout=first[0].lock_timeout, attempts_planned=len(first), **fields
            )
            started = time.monotonic()
            try:
                self._run_with_retries(
                    migration, step, len(steps), policy, walk=walk, entry=entry, label=label
                )
            except BaseException as exc:
                self.events.step_failed(
                    error=str(exc),
                    duration=time.monotonic() - started,
                    attempts=entry.attempts,
                    **fields,
                )
                raise
            self.events.step_end(
                outcome="done",
                duration=time.monotonic() - started,
                attempts=entry.attempts,
                **fields,
            )
            assert entry.finished_at is not None
            elapsed = (entry.finished_at - entry.started_at).total_seconds()
            self.report(f"    {label} ({elapsed:.2f}s)")
        return walk.state

    def _run_with_retries(
        self,
        migration: Migration,
        step: Step,
        step_count: int,
        policy: RunnerPolicy,
        *,
        walk: _Walk,
        entry: StepEntry,
        label: str,
    ) -> None:
        """Run ``step`` under its lock-retry schedule: again after a lock timeout or a
        deadlock, when it rolled back whole or its statement is safe to run again."""
        name = f"{migration.app_label}.{migration.name}"
        # Django's own loop (one-transaction migrations) advances the state in
        # place; rather than copy it for a rare retry, rebuild it then.
        checkpoint = None if self._whole else walk.snapshot()
        refused = not_retried(step)
        attempts = policy.lock_retries.attempts(retried=not refused)
        where = f"step {step.index + 1}/{step_count} of {name}"
        started = time.monotonic()
        #: What each failed attempt hit ("lock timeout", "deadlock").
        failed: list[str] = []
        for attempt in attempts:
            entry.attempts = attempt.number
            self.executor.ledger.check_lock(f"before {where}")
            try:
                self._run_step(
                    migration,
                    step,
                    step_count,
                    policy.for_attempt(attempt),
                    walk,
                    entry=entry,
                    where=where,
                )
            except DatabaseError as exc:
                code = sqlstate(exc)
                if code in RETRYABLE:
                    failed.append(RETRYABLE[code])
                if code not in RETRYABLE or attempt.last:
                    elapsed = time.monotonic() - started
                    told = failed_attempts(attempt, failed, elapsed, refused)
                    if told:
                        # Kept with the error in the ledger's record of the migration.
                        exc.add_note(told)
                    self.failure = self._failure(migration, step, step_count, told)
                    raise
                following = attempts[attempt.number]
                self.events.step_retry(
                    migration=name,
                    step=step.index + 1,
                    step_count=step_count,
                    attempt=attempt.number,
                    attempts=attempt.count,
                    reason=failed[-1],
                    backoff=attempt.sleep,
                    next_lock_timeout=following.lock_timeout,
                )
                self.notify(
                    self._attempt_failed(
                        migration, step, label, attempt, following=following, what=failed[-1]
                    )
                )
                time.sleep(attempt.sleep)
                # The failed attempt advanced the state: start the step again from
                # where it began.
                if checkpoint is None:
                    walk.state = self._state_of_applied()
                else:
                    walk.restore(checkpoint)
                continue
            except Exception:
                self.failure = self._failure(migration, step, step_count)
                raise
            return

    def _attempt_failed(
        self,
        migration: Migration,
        step: Step,
        label: str,
        attempt: Attempt,
        *,
        following: Attempt,
        what: str,
    ) -> str:
        """The stderr line of a failed attempt that will be tried again."""
        try:
            holders = describe_holders(self.connection, self._step_tables(migration, step))
        except Error:  # the question is a courtesy: never let it hide the retry
            holders = ""
        return attempt_line(
            label,
            attempt,
            following=following,
            what=what,
            holders=holders,
            transactional=step.kind is StepKind.TRANSACTIONAL,
        )

    def _failure(
        self, migration: Migration, step: Step, step_count: int, attempts: str = ""
    ) -> StepFailure:
        committed = ""
        if step.kind is StepKind.AUTOCOMMIT_PYTHON:
            committed = self._committed.describe()
        elif step.kind is StepKind.NON_TRANSACTIONAL:
            committed = self._left_behind(step)
        return StepFailure(
            migration=f"{migration.app_label}.{migration.name}",
            index=step.index,
            step_count=step_count,
            kind=step.kind,
            description=step.description,
            committed=committed,
            attempts=attempts,
        )

    def _left_behind(self, step: Step) -> str:
        """What a failed statement that ran alone leaves: a concurrent build or reindex,
        its INVALID index."""
        from pglast import ast

        for part in step.parts:
            for statement in (s for sql in part.statements or () for s in parse(sql)):
                node = statement.tree
                if isinstance(node, ast.IndexStmt) and node.concurrent and node.idxname:
                    schema = node.relation.schemaname if node.relation is not None else None
                    try:
                        state = self._index_state(node.idxname, schema)
                    except Error:  # a dead connection: say nothing rather than hide the failure
                        return ""
                    if state == "invalid":
                        return (
                            f"the failed concurrent build left the INVALID index "
                            f"{node.idxname} behind (it still slows writes and, if unique, "
                            "enforces uniqueness); the next run drops it and builds it again"
                        )
                if isinstance(node, ast.DoStmt | ast.CallStmt):
                    return (
                        "what the block committed itself before the error (a COMMIT inside "
                        "it) stays committed"
                    )
                if (
                    isinstance(node, ast.ReindexStmt)
                    and node.relation is not None
                    and not safe_to_run_again(statement.sql)
                ):
                    try:
                        names = self._reindex_leftovers(node.relation)
                    except Error:
                        return ""
                    if names:
                        one = len(names) == 1
                        return (
                            f"the failed REINDEX CONCURRENTLY left the INVALID "
                            f"{'index' if one else 'indexes'} {', '.join(names)} behind "
                            f"({'it slows' if one else 'they slow'} writes and, if unique, "
                            f"{'enforces' if one else 'enforce'} uniqueness); drop "
                            f"{'it' if one else 'them'} with DROP INDEX CONCURRENTLY before "
                            "the next run, which reindexes again"
                        )
        return ""

    def _reindex_leftovers(self, relation: Any) -> list[str]:
        """INVALID ``…_ccnew``/``…_ccold`` indexes of the table that a failed ``REINDEX
        CONCURRENTLY`` of ``relation`` (an index or a table) left behind."""
        quote = self.connection.ops.quote_name
        name = quote(relation.relname)
        if relation.schemaname:
            name = f"{quote(relation.schemaname)}.{name}"
        with self.connection.cursor() as cursor:
            cursor.execute(
                r"""
                SELECT c.relname FROM pg_index i
                JOIN pg_class c ON c.oid = i.indexrelid
                WHERE NOT i.indisvalid
                  AND (c.relname LIKE '%%\_ccnew%%' OR c.relname LIKE '%%\_ccold%%')
                  AND i.indrelid = coalesce(
                      (SELECT indrelid FROM pg_index WHERE indexrelid = to_regclass(%s)),
                      to_regclass(%s))
                ORDER BY 1
                """,
                [name, name],
            )
            return [row[0] for row in cursor.fetchall()]

    def _state_of_applied(self) -> ProjectState:
        """The project state of what the database has applied (after a rolled-back step)."""
        loader = self.executor.loader
        applied = self.executor.recorder.applied_migrations()
        nodes = [key for key in applied if key in loader.graph.nodes]
        state: ProjectState = loader.project_state(nodes, at_end=True)
        return state

    def _step_tables(self, migration: Migration, step: Step) -> list[str]:
        """The existing tables ``step`` locks in a mode that blocks writes (or reads)."""
        if self._whole:
            return operation_tables(migration, self._state_before)
        trees = [
            s.tree
            for part in step.parts
            for s in self._statements_of(migration, part)
            if s.tree is not None
        ]
        return strong_lock_tables(trees)

    def _preflight(self, migration: Migration, step: Step, label: str) -> None:
        """Deal with old transactions on the tables this step will lock (policy from settings)."""
        if not self._watch.may_have_old_transactions():
            return
        tables = self._step_tables(migration, step)
        if not tables:
            return
        min_age = self.settings.preflight_min_age
        blockers = find_blockers(self.connection, tables, min_age)
        if not blockers:
            return
        listing = "; ".join(b.describe() for b in blockers)
        policy = self.settings.preflight
        if policy == "stop":
            raise PreflightStop(
                f"Before {label}: old transactions use the tables it locks: {listing}. A strong "
                "lock queued behind them would stall every query on those tables. End them, or "
                "run again when they are gone (SAFEMIGRATE['PREFLIGHT'] = 'wait' waits for them)."
            )
        self.notify(f"    before {label}: old transactions on its tables: {listing}")
        if policy == "warn":
            return
        deadline = time.monotonic() + self.settings.preflight_wait
        while blockers and time.monotonic() < deadline:
            time.sleep(0.5)
            blockers = find_blockers(self.connection, tables, min_age)
        if blockers:
            self.notify(
                f"    still there after {self.settings.preflight_wait:g}s; going on under "
                "the lock timeout"
            )

    def _statements_of(self, migration: Migration, part: StepPart) -> list[Any]:
        if self._whole:
            return []
        if part.statements is not None:
            return [s for sql in part.statements for s in parse(sql)]
        return list(self._rendered.get(part.operation_index, ()))

    def _run_step(
        self,
        migration: Migration,
        step: Step,
        step_count: int,
        policy: RunnerPolicy,
        walk: _Walk,
        *,
        entry: StepEntry,
        where: str,
    ) -> None:
        """Run ``step`` and write its record: in its own transaction when it has one."""
        last = step.index == step_count - 1
        if step.kind is StepKind.TRANSACTIONAL:
            with transaction.atomic(using=self.connection.alias):
                with self._editor(policy, local=True) as editor:
                    if self._whole:
                        # Django's own loop over the operations (state handling included).
                        # It wraps each operation in a savepoint unless told that the
                        # migration already runs in a transaction, which ours does.
                        editor.atomic_migration = True
                        try:
                            walk.state = apply_operations(migration, walk.state, editor)
                        finally:
                            editor.atomic_migration = False
                    else:
                        for part in step.parts:
                            self._run_part(migration, part, walk, editor)
                # Last thing before COMMIT, inside the transaction: on a loss the step
                # is rolled back instead of committed without the lock.
                self.executor.ledger.check_lock(
                    f"before committing {where} (the step was rolled back)"
                )
                self._finished(migration, entry, last)
            return
        # Autocommit: the work is committed as it runs, so its record is written even
        # if the lock went meanwhile (it says what the database now holds, and keeps a
        # rerun from running the step's Python again); the check before the next step
        # stops the run.
        with self._editor(policy, local=False) as editor, self._watch_python(step):
            for part in step.parts:
                if step.kind is StepKind.NON_TRANSACTIONAL and part.statements:
                    walk.advance(part.operation_index)
                    for sql in part.statements:
                        self._run_alone(sql, editor)
                else:
                    self._run_part(migration, part, walk, editor)
        if last:
            with transaction.atomic(using=self.connection.alias):
                self._finished(migration, entry, last)
        else:
            self._finished(migration, entry, last)

    @contextmanager
    def _watch_python(self, step: Step) -> Iterator[None]:
        """Count what an autocommit ``RunPython`` step commits (see :mod:`.committed`)."""
        if step.kind is not StepKind.AUTOCOMMIT_PYTHON:
            yield
            return
        with watch_committed(self.connection) as self._committed:
            yield

    def _finished(self, migration: Migration, entry: StepEntry, last: bool) -> None:
        """The step's record; with the last step, the migration's records too (one statement)."""
        entry.finished_at = timezone.now()
        if last:
            self.executor.record_applied_now(migration, entry)
        else:
            self.executor.ledger.step_finished(entry)

    def _run_part(self, migration: Migration, part: StepPart, walk: _Walk, editor: Any) -> None:
        walk.advance(part.operation_index)
        if part.statements is not None:
            for sql in part.statements:
                editor.execute(sql, None)
            return
        operation = migration.operations[part.operation_index]
        operation.database_forwards(
            migration.app_label, editor, walk.before[part.operation_index], walk.state
        )

    def _run_alone(self, sql: str, editor: Any) -> None:
        """A non-transactional statement, made safe to run again after a crash."""
        from pglast import ast

        statements = parse(sql)
        node = statements[0].tree if len(statements) == 1 else None
        if isinstance(node, ast.IndexStmt) and node.concurrent and node.idxname:
            schema = node.relation.schemaname if node.relation is not None else None
            state = self._index_state(node.idxname, schema)
            if state == "valid":
                self.report(f"    index {node.idxname} already exists and is valid; not rebuilt")
                return
            if state == "invalid":
                # A failed or killed concurrent build left it behind: it slows writes
                # and, if unique, still enforces uniqueness. Drop it and build again.
                self.report(f"    dropping the INVALID index {node.idxname} left by a failed build")
                editor.execute(
                    f"DROP INDEX CONCURRENTLY IF EXISTS {editor.quote_name(node.idxname)}", None
                )
        editor.execute(sql, None)

    def _index_state(self, name: str, schema: str | None) -> str | None:
        with self.connection.cursor() as cursor:
            cursor.execute(
                """
                SELECT i.indisvalid FROM pg_index i
                JOIN pg_class c ON c.oid = i.indexrelid
                JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE c.relname = %s
                  AND (n.nspname = %s OR (%s::text IS NULL
                       AND n.nspname = ANY (current_schemas(false))))
                """,
                [name, schema, schema],
            )
            row = cursor.fetchone()
        if row is None:
            return None
        return "valid" if row[0] else "invalid"

    @contextmanager
    def _editor(self, policy: RunnerPolicy, *, local: bool) -> Iterator[Any]:
        """A schema editor whose statements run under the timeouts of their kind.

        ``local``: inside the step's transaction, with ``SET LOCAL``, which ends with
        the transaction, so nothing stays on the session (nor, behind a pooler in
        transaction mode, on a pooled server session).

        Otherwise (an autocommit step: a concurrent index build cannot run in a
        transaction block, and non-atomic Python asked for none) only a session
        setting reaches the statements. On a session of our own it is set, and reset
        when the step ends. Behind a pooler each statement may run on another server
        session and the setting would stay on the one that ran it, so nothing is set:
        the statements run under the pooled sessions' defaults, and a step that wants
        other values says so on stderr.
        """
        connection = self.connection
        current: list[Timeouts | None] = [None]
        pooled, defaults = (False, None) if local else self._session_defaults()
        warned: set[Timeouts] = set()

        def apply(timeouts: Timeouts) -> None:
            current[0] = timeouts
            if pooled:
                if timeouts != defaults and timeouts not in warned:
                    warned.add(timeouts)
                    assert defaults is not None
                    self.notify(
                        "    behind a connection pooler, this autocommit step runs under the "
                        f"database's defaults ({_describe_timeouts(defaults)}) instead of "
                        f"{_describe_timeouts(timeouts)}: a session setting would stay on a "
                        "pooled server session. Point --database at a direct connection to "
                        "apply them, or set them for the role."
                    )
                return
            lock, statement = timeouts.sql_values()
            with connection.cursor() as cursor:
                # set_config(..., true) is SET LOCAL; one round trip for both.
                cursor.execute(
                    "SELECT set_config('lock_timeout', %s, %s), "
                    "set_config('statement_timeout', %s, %s)",
                    [lock, local, statement, local],
                )

        with connection.schema_editor(atomic=False) as editor:
            if not self._whole:
                # Statements of several kinds: each runs under the timeouts of its kind.
                original = editor.execute

                def execute(sql: Any, params: Any = ()) -> Any:
                    wanted = policy.timeouts_for(statement_text(sql), self.pg_version)
                    if wanted != current[0]:
                        apply(wanted)
                    return original(sql, params)

                editor.execute = execute  # type: ignore[method-assign]
            # RunPython, plain ORM queries and (in a one-transaction migration) every
            # statement run under the strong timeouts.
            apply(policy.strong)
            try:
                yield editor
            finally:
                if (
                    not local
                    and not pooled
                    and connection.connection is not None
                    and connection.is_usable()
                ):
                    with connection.cursor() as cursor:
                        cursor.execute(
                            "SELECT set_config(name, reset_val, false) FROM pg_settings "
                            "WHERE name IN ('lock_timeout', 'statement_timeout')"
                        )

    def _session_defaults(self) -> tuple[bool, Timeouts]:
        """Whether the migration connection goes through a pooler, and the timeouts a
        session starts with (the role's, the database's or the server's).

        Read once per connection (one round trip, on the first autocommit step). A
        pooler answers the connection's startup itself and gives it a backend pid of
        its own, which differs from the pid of the server session that runs the
        statements (:func:`~django_safemigrate.execution.lock.client_backend_pid`).
        """
        from django_safemigrate.execution.lock import pooled

        connection = self.connection
        connection.ensure_connection()
        key = id(connection.connection)
        if self._defaults is None or self._defaults[0] != key:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT pg_backend_pid(), "
                    "(SELECT reset_val FROM pg_settings WHERE name = 'lock_timeout'), "
                    "(SELECT reset_val FROM pg_settings WHERE name = 'statement_timeout')"
                )
                pid, lock_ms, statement_ms = cursor.fetchone()
            defaults = Timeouts(int(lock_ms) / 1000, int(statement_ms) / 1000)
            self._defaults = (key, pooled(connection, int(pid)), defaults)
        return self._defaults[1], self._defaults[2]


def _describe_timeouts(timeouts: Timeouts) -> str:
    lock, statement = timeouts.lock_timeout, timeouts.statement_timeout
    return (
        f"lock_timeout {f'{lock:g}s' if lock else 'none'}, "
        f"statement_timeout {f'{statement:g}s' if statement else 'none'}"
    )


#: Django's operations whose SQL on Django's own PostgreSQL backend never includes a
#: statement PostgreSQL refuses in a transaction (the concurrent ones are separate
#: classes). A migration made only of these, on that backend, is one transactional
#: step and needs no rendering to be split.
_PLAIN_OPERATIONS: tuple[type, ...] = ()


#: Django's operations whose SQL on an existing table can have an online form.
_MAY_GO_ONLINE = frozenset(
    {
        "AddIndex",
        "RemoveIndex",
        "AddConstraint",
        "AddField",
        "AlterField",
        "AlterUniqueTogether",
        "AlterIndexTogether",
        "AlterOrderWithRespectTo",
    }
)


def one_transaction(migration: Migration, connection: Any, *, online: bool = False) -> bool:
    """True when the whole migration certainly runs as one transaction.

    With ``online``, only a migration none of whose operations can have an online form.
    """
    global _PLAIN_OPERATIONS  # noqa: PLW0603 - filled once, lazily
    from django.db.backends.postgresql.schema import DatabaseSchemaEditor
    from django.db.migrations import operations as ops

    if getattr(connection, "SchemaEditorClass", None) is not DatabaseSchemaEditor:
        return False  # another backend may emit other SQL: decide from its SQL
    if not migration.atomic:
        return False
    if not _PLAIN_OPERATIONS:
        names = [
            "CreateModel",
            "DeleteModel",
            "RenameModel",
            "AlterModelTable",
            "AlterModelTableComment",
            "AlterUniqueTogether",
            "AlterIndexTogether",
            "AlterOrderWithRespectTo",
            "AlterModelOptions",
            "AlterModelManagers",
            "AddIndex",
            "RemoveIndex",
            "RenameIndex",
            "AddConstraint",
            "RemoveConstraint",
            "AddField",
            "RemoveField",
            "AlterField",
            "RenameField",
        ]
        _PLAIN_OPERATIONS = tuple(getattr(ops, n) for n in names if hasattr(ops, n))
    for operation in migration.operations:
        if (
            online
            and type(operation).__name__ in _MAY_GO_ONLINE
            and not plain_added_column(operation)
        ):
            return False
        if type(operation) in _PLAIN_OPERATIONS:
            continue
        if type(operation) is ops.RunPython and operation.atomic is not False:
            continue
        return False
    return True


def plain_added_column(operation: Any) -> bool:
    """An ``AddField`` with no online form: a nullable column with no default, index,
    uniqueness, reference or generated expression. Django's schema editor emits
    ``ALTER TABLE … ADD COLUMN … NULL`` for it (and a ``COMMENT`` for a ``db_comment``): a
    catalog change under a brief lock, whatever the table's size, so its migration needs
    no rendering to be planned."""
    from django.db.migrations.operations import AddField
    from django.db.models import NOT_PROVIDED

    if type(operation) is not AddField:
        return False
    field = operation.field
    return bool(
        field.null
        and not field.unique
        and not getattr(field, "db_index", False)
        and not field.primary_key
        and not field.is_relation
        and field.default is NOT_PROVIDED
        and getattr(field, "db_default", NOT_PROVIDED) is NOT_PROVIDED
        and not getattr(field, "generated", False)
    )


def operation_tables(migration: Migration, state: ProjectState | None) -> list[str]:
    """Existing tables the operations of a plain migration touch (for the pre-flight)."""
    if state is None:
        return []
    tables = []
    for operation in migration.operations:
        if type(operation).__name__ == "CreateModel":
            continue
        name = getattr(operation, "model_name", None) or getattr(operation, "name", None)
        key = (migration.app_label, str(name).lower()) if name else None
        if key and key in state.models:
            options = state.models[key].options
            tables.append(relation_ref(str(options.get("db_table") or f"{key[0]}_{key[1]}")))
    return list(dict.fromkeys(tables))


class _Walk:
    """The project state moving through a migration's operations, once each."""

    def __init__(self, migration: Migration, state: ProjectState) -> None:
        self.migration = migration
        self.state = state
        self.before: dict[int, ProjectState] = {}

    def advance(self, index: int) -> None:
        """Move past operation ``index`` (once), keeping the state before it."""
        if index in self.before:
            return
        operation = self.migration.operations[index]
        app_label = self.migration.app_label
        if isinstance(self.state, IncrementalState) and walkable(operation):
            # The walk of :mod:`.walk`: only what the operation changes is copied.
            if uses_models(operation):
                self.state.settle()
            self.before[index] = state_before(operation, app_label, self.state)
        else:
            self.before[index] = self.state.clone()
        operation.state_forwards(app_label, self.state)

    def snapshot(self) -> tuple[ProjectState, dict[int, ProjectState]]:
        return copy_of(self.state, self.migration), dict(self.before)

    def restore(self, snapshot: tuple[ProjectState, dict[int, ProjectState]]) -> None:
        state, before = snapshot
        self.state = copy_of(state, self.migration)
        self.before = dict(before)


def copy_of(state: ProjectState, migration: Migration) -> ProjectState:
    """A copy of ``state`` to walk ``migration`` on without changing ``state``: a detached
    walked state when every operation of it can be walked, else a whole ``clone()``."""
    if isinstance(state, IncrementalState) and fallback_reason(migration) is None:
        return state.detached()
    return state.clone()
