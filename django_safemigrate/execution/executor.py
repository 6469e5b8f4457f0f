"""Django's migration executor, with every migration it touches written to the ledger.

The subclass is swapped into Django's ``migrate`` command only while one of our
commands runs (:func:`ledgered_executor`), so nothing else in the process sees it.
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import traceback
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from django.core.management.commands import migrate as django_migrate
from django.db import DatabaseError
from django.db.migrations import Migration
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.state import ProjectState
from django.utils import timezone

from django_safemigrate import djangocompat
from django_safemigrate.checksum import Precomputed
from django_safemigrate.enums import MigrationOutcome
from django_safemigrate.exceptions import LockLost
from django_safemigrate.execution.archive import Archiver, archiving
from django_safemigrate.execution.ledger import Ledger, PendingRecord, Statement, StepEntry
from django_safemigrate.execution.recorded import RunRecorder, forget_applied
from django_safemigrate.execution.walk import (
    applied_by,
    apply_operations,
    describe_fallback,
    fallback_reason,
    incremental,
    plain,
)
from django_safemigrate.plan import SharedDiskLoader
from django_safemigrate.sql import IncrementalState, quiet_collector, swappable_names_at_once

if TYPE_CHECKING:
    from django_safemigrate.execution.runner import StepRunner


class LedgerExecutor(djangocompat.ExecutorHooks):
    """Records applied, faked, unapplied and failed migrations in the ledger."""

    ledger: Ledger
    #: Set by ``safemigrate``: builds the :class:`StepRunner` that applies migrations
    #: in steps. ``None`` (plain ``migrate``) applies them as Django does.
    runner_factory: Callable[[LedgerExecutor], StepRunner] | None = None
    #: Set by ``safemigrate``'s gate: the migrations this run may apply. ``None``: all.
    allowed: frozenset[tuple[str, str]] | None = None
    #: Set by ``safemigrate``'s gate: who approved each migration that runs on a review.
    approvals: dict[tuple[str, str], str] = {}
    #: Set by ``safemigrate``: the statements that mark a migration's review record
    #: applied, written with the migration's own records (empty when it has none).
    mark_governed: Callable[[tuple[str, str], Any], list[Statement]] | None = None
    #: Set by the commands: called with the plan before anything of it is applied (the
    #: recovery-point check, :mod:`django_safemigrate.execution.recovery`).
    before_applying: Callable[[LedgerExecutor, Any], None] | None = None
    #: Set by the commands with ``SAFEMIGRATE['ARCHIVE']`` on: copies what a dropped
    #: column or table held before the drop (:mod:`django_safemigrate.execution.archive`).
    archiver: Archiver | None = None
    #: Set by the commands from verbosity 2: told why a migration is applied the way
    #: Django's executor applies it rather than walked (:mod:`.walk`).
    explain: Callable[[str], None] | None = None

    #: Set by ``safemigrate``: the gate's loader, handed to the next executor built for
    #: the same connection (Django's ``migrate``), once. Under the migration lock nothing
    #: changes the recorded migrations between the gate and the plan, so building the
    #: graph and reading the recorded migrations again would only repeat the same reads.
    prebuilt_loader: MigrationLoader | None = None

    def __init__(self, connection: Any, progress_callback: Any = None) -> None:
        # Django's __init__, with a loader that reuses this run's scan of the
        # migration modules instead of importing and instantiating them again.
        self.connection = connection
        prebuilt = type(self).prebuilt_loader
        type(self).prebuilt_loader = None
        if prebuilt is not None and prebuilt.connection is connection:
            self.loader = prebuilt
        else:
            self.loader = SharedDiskLoader(connection)
        self.recorder = RunRecorder(connection)
        self.progress_callback = progress_callback
        self._started: dict[tuple[str, str], Any] = {}
        self._fake = False
        self._soft_applied = False
        self._current: Migration | None = None
        self._checksums = Precomputed([])
        self._runner: StepRunner | None = None
        self._linear: bool | None = None

    def migration_plan(self, targets: Any, clean_start: bool = False) -> Any:
        """Django's plan, without what the gate held back.

        Only the plan of what to do is narrowed; the full plan Django builds for the
        project state (``clean_start``) stays whole.
        """
        plan = self._django_plan(targets, clean_start)
        if self.allowed is None or clean_start:
            return plan
        return [
            (migration, backwards)
            for migration, backwards in plan
            if backwards or (migration.app_label, migration.name) in self.allowed
        ]

    def migrate(
        self,
        targets: Any,
        plan: Any = None,
        state: ProjectState | None = None,
        fake: bool = False,
        fake_initial: bool = False,
    ) -> ProjectState:
        if plan is None:
            plan = self.migration_plan(targets)
        self._checksums = Precomputed([migration for migration, _ in plan])
        if self.before_applying is not None and plan:
            self.before_applying(self, plan)
        if not (self.linear and plan and not fake and all(not back for _, back in plan)):
            return super().migrate(targets, plan, state, fake=fake, fake_initial=fake_initial)
        # Applied walking the state forward once (:mod:`.walk`).
        if state is None:
            state = self.applied_state(with_applied_migrations=True)
        with quiet_collector(), swappable_names_at_once():
            state = super().migrate(
                targets, plan, incremental(state), fake=fake, fake_initial=fake_initial
            )
            if isinstance(state, IncrementalState):
                # What the post_migrate handlers get: the registry Django would give them.
                state.settle()
        return state

    @property
    def linear(self) -> bool:
        """Whether plans are applied walking the state forward (``LINEAR_APPLY``)."""
        if self._linear is None:
            from django_safemigrate.conf import get_settings

            self._linear = get_settings().linear_apply
        return self._linear

    def applied_state(self, with_applied_migrations: bool = False) -> ProjectState:
        """Django's ``_create_project_state()``, building an :class:`IncrementalState` when
        plans are walked.

        The state of what is applied is built without rendering (as Django does), where
        Django's ``ProjectState.alter_field`` scans every field of the project per
        ``AlterField``, which the walked state does not.
        """
        if not self.linear:
            return super().applied_state(with_applied_migrations)
        state = IncrementalState(real_apps=self.loader.unmigrated_apps)
        if with_applied_migrations:
            full_plan = self.migration_plan(self.loader.graph.leaf_nodes(), clean_start=True)
            applied = {
                self.loader.graph.nodes[key]
                for key in self.loader.applied_migrations
                if key in self.loader.graph.nodes
            }
            for migration, _ in full_plan:
                if migration in applied:
                    migration.mutate_state(state, preserve=False)
        return state

    def apply_migration(
        self,
        state: ProjectState,
        migration: Migration,
        fake: bool = False,
        fake_initial: bool = False,
    ) -> ProjectState:
        key = (migration.app_label, migration.name)
        self._started[key] = timezone.now()
        self._fake = fake
        self._current = migration
        try:
            with archiving(None if fake else self.archiver, migration):
                state = self._apply(state, migration, fake=fake, fake_initial=fake_initial)
        except LockLost:
            raise  # not a failure of the migration: it did not run, or was rolled back
        except BaseException as exc:
            self._lost_meanwhile(migration, exc)
            self._failed(migration, exc)
            raise
        finally:
            self._current = None
        self.ledger.flush()
        return state

    def _apply(
        self, state: ProjectState, migration: Migration, *, fake: bool, fake_initial: bool
    ) -> ProjectState:
        walked = isinstance(state, IncrementalState)
        reason = fallback_reason(migration) if walked and not fake else None
        if reason is not None:
            if self.explain is not None:
                self.explain(describe_fallback(migration, reason))
            state = plain(state)
        if self.runner_factory is not None and not fake and not fake_initial:
            # The step runner checks the lock before each step and each commit.
            applied = self._apply_in_steps(state, migration)
        else:
            self.ledger.check_lock(f"before applying {migration.app_label}.{migration.name}")
            with applied_by(migration, functools.partial(apply_operations, migration)):
                applied = super().apply_migration(
                    state, migration, fake=fake, fake_initial=fake_initial
                )
        # After a migration applied as Django does (or turned into a fake by
        # --fake-initial, which hands back Django's state), the walk goes on from its state.
        return incremental(applied) if walked else applied

    def _apply_in_steps(self, state: ProjectState, migration: Migration) -> ProjectState:
        assert self.runner_factory is not None
        if self.progress_callback:
            self.progress_callback("apply_start", migration, False)
        if self._runner is None:
            self._runner = self.runner_factory(self)
        state = self._runner.apply(migration, state)
        if self.progress_callback:
            self.progress_callback("apply_success", migration, False)
        return state

    def _django_plan(self, targets: Any, clean_start: bool) -> list[Any]:
        """Django's plan, computed once per run for the same targets and applied migrations.

        The gate, Django's ``migrate`` and the state of the applied migrations each ask
        for it; each time Django walks the whole history once per target. Within a run
        whose loaders share one graph (:func:`~django_safemigrate.plan.sharing_disk_scan`)
        the plan depends on nothing else, so it is kept with the graph.
        """
        graph = self.loader.graph
        plans = SharedDiskLoader.plans_of(graph)
        key = None
        if plans is not None:
            applied = frozenset() if clean_start else frozenset(self.loader.applied_migrations)
            key = (tuple(targets), clean_start, applied)
            found = plans.get(key)
            if found is not None:
                return list(found)
        plan: list[Any] = super().migration_plan(targets, clean_start=clean_start)
        if plans is not None and key is not None and self.loader.graph is graph:
            plans[key] = list(plan)
        return plan

    def checksum_of(self, migration: Migration) -> str:
        return self._checksums.get(migration)

    def record_applied_now(self, migration: Migration, step: StepEntry | None = None) -> None:
        """Django's ``django_migrations`` row(s), the ledger's record and ``step``'s, in
        the caller's transaction, written by one statement.

        Used by the step runner with the last step of a migration. Written without
        ``record_migration``, whose signature differs between Django versions, and
        without the ORM: this runs once per migration of every deploy.
        """
        keys = list(migration.replaces) or [(migration.app_label, migration.name)]
        now = timezone.now()
        table = self.connection.ops.quote_name(self.recorder.Migration._meta.db_table)
        statements: list[Statement] = [
            (
                f"INSERT INTO {table} (app, name, applied) VALUES "
                + ", ".join(["(%s, %s, %s)"] * len(keys)),
                [value for app_label, name in keys for value in (app_label, name, now)],
            )
        ]
        self.ledger.migration_recorded((migration.app_label, migration.name), applied=True)
        forget_applied(self.connection)
        statements += self.ledger.record_statements(
            self._entry(migration, MigrationOutcome.APPLIED, finished=now)
        )
        if step is not None:
            statements += self.ledger.step_statements(step)
        if self.mark_governed is not None:
            statements += self.mark_governed((migration.app_label, migration.name), now)
        self.ledger.write_together(statements)

    def record_migration(self, *args: Any, **kwargs: Any) -> None:
        """Django's record, then the ledger's, in the same transaction.

        Runs inside the migration's transaction when the migration is atomic.
        Django's own row is written first, so the ledger sees its own tables as
        applied right after the migration that creates them. Django up to 5.2
        passes the migration; 6.0 passes ``(app_label, name, forward)`` and calls
        itself again for each migration a squashed one replaces.
        """
        if self._current is not None:
            # Inside the migration's transaction when it is atomic: a migration that
            # finished after the lock was lost is rolled back rather than recorded.
            self.ledger.check_lock(
                f"before recording {self._current.app_label}.{self._current.name} "
                "(its transaction, if it had one, was rolled back)"
            )
        super().record_migration(*args, **kwargs)
        current = self._current
        if current is None:
            return
        if isinstance(args[0], Migration):
            key, forward = (args[0].app_label, args[0].name), True
        else:
            key = (args[0], args[1])
            forward = kwargs.get("forward", args[2] if len(args) > 2 else True)
        if forward and key == (current.app_label, current.name):
            self.ledger.migration_recorded(key, applied=True)
            # Faked, or turned into a fake by --fake-initial: no SQL ran.
            fake = self._fake or self._soft_applied
            self._record(current, MigrationOutcome.FAKED if fake else MigrationOutcome.APPLIED)

    def detect_soft_applied(
        self, project_state: ProjectState | None, migration: Migration
    ) -> tuple[bool, ProjectState]:
        applied, state = super().detect_soft_applied(project_state, migration)
        self._soft_applied = applied
        return applied, state

    def unapply_migration(
        self, state: ProjectState, migration: Migration, fake: bool = False
    ) -> ProjectState:
        key = (migration.app_label, migration.name)
        self._started[key] = timezone.now()
        try:
            self.ledger.check_lock(f"before unapplying {migration.app_label}.{migration.name}")
            state = super().unapply_migration(state, migration, fake=fake)
        except LockLost:
            raise
        except BaseException as exc:
            self._lost_meanwhile(migration, exc)
            self._failed(migration, exc)
            raise
        self.ledger.migration_recorded(key, applied=False)
        self._record(migration, MigrationOutcome.UNAPPLIED)
        return state

    def _record(self, migration: Migration, outcome: MigrationOutcome, error: str = "") -> None:
        self.ledger.record(self._entry(migration, outcome, error))

    def _entry(
        self,
        migration: Migration,
        outcome: MigrationOutcome,
        error: str = "",
        finished: datetime.datetime | None = None,
    ) -> PendingRecord:
        key = (migration.app_label, migration.name)
        started = self._started.get(key) or timezone.now()
        self._soft_applied = False
        return PendingRecord(
            app_label=migration.app_label,
            name=migration.name,
            checksum=self._checksums.get(migration),
            definition=self._checksums.definition(migration),
            started_at=started,
            finished_at=finished or timezone.now(),
            outcome=outcome,
            error=error,
            approval=self.approvals.get(key)
            if outcome in (MigrationOutcome.APPLIED, MigrationOutcome.UNAPPLIED)
            else None,
        )

    def _lost_meanwhile(self, migration: Migration, exc: BaseException) -> None:
        """Raise ``LockLost`` instead when a database error came with the lock's loss.

        A server restart or failover ends both sessions; a runner that took the lost
        lock ends this one's migration session. Either way the cause to report (and
        the exit code) is the lost lock, not the migration.
        """
        if isinstance(exc, DatabaseError):
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            try:
                self.ledger.check_lock(
                    f"while applying {migration.app_label}.{migration.name} (it stopped: "
                    f"{first}; its unfinished step is rolled back, or cleaned up on the next "
                    "run)"
                )
            except LockLost as lost:
                raise lost from exc

    def _failed(self, migration: Migration, exc: BaseException) -> None:
        self.ledger.failed = (migration.app_label, migration.name)
        error = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        # The migration's transaction is gone by now; write the failure on its own.
        self.ledger.reconnect_if_broken()
        with contextlib.suppress(Exception):
            self._record(migration, MigrationOutcome.FAILED, error)


@contextlib.contextmanager
def ledgered_executor(
    ledger: Ledger,
    runner_factory: Callable[[LedgerExecutor], StepRunner] | None = None,
    before_applying: Callable[[LedgerExecutor, Any], None] | None = None,
    archiver: Archiver | None = None,
    explain: Callable[[str], None] | None = None,
) -> Iterator[type[LedgerExecutor]]:
    """Make Django's ``migrate`` build a :class:`LedgerExecutor` bound to ``ledger``."""
    executor_class = type(
        "BoundLedgerExecutor",
        (LedgerExecutor,),
        {
            "ledger": ledger,
            "runner_factory": staticmethod(runner_factory) if runner_factory else None,
            "before_applying": staticmethod(before_applying) if before_applying else None,
            "archiver": archiver,
            "explain": staticmethod(explain) if explain else None,
        },
    )
    original = getattr(django_migrate, "MigrationExecutor")  # noqa: B009 - not in the stubs
    setattr(django_migrate, "MigrationExecutor", executor_class)  # noqa: B010
    try:
        yield executor_class
    finally:
        setattr(django_migrate, "MigrationExecutor", original)  # noqa: B010
