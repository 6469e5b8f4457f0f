"""Writes the ledger: one :class:`~django_safemigrate.models.Run` per command,
one :class:`~django_safemigrate.models.MigrationRecord` per migration it touched.

The ledger lives in the database being migrated, in tables that this app's own
migrations create. On a fresh database they appear somewhere in the middle of
the first plan, so entries are kept in memory until every migration of this
app is applied, then written. A migration's "applied" entry is written inside
the migration's own transaction (next to Django's ``django_migrations`` row), so
the ledger never says "applied" for something that was rolled back. Rows that
commit together are written by one statement (:meth:`Ledger.write_together`):
this runs once per migration of every deploy.
"""

from __future__ import annotations

import dataclasses
import datetime
import getpass
import os
import socket
from collections.abc import Callable, Sequence
from typing import Any

from django.db import DatabaseError, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.utils import timezone

from django_safemigrate.enums import MigrationOutcome, RunOutcome
from django_safemigrate.exceptions import SafemigrateError
from django_safemigrate.execution import continuity
from django_safemigrate.execution.events import RunEvents
from django_safemigrate.execution.recorded import RunRecorder

APP_LABEL = "django_safemigrate"

#: One SQL statement and its parameters.
Statement = tuple[str, list[Any]]


@dataclasses.dataclass
class PendingRecord:
    app_label: str
    name: str
    checksum: str
    started_at: datetime.datetime
    finished_at: datetime.datetime
    outcome: MigrationOutcome
    error: str = ""
    #: The definition checksum (``checksum.definition_checksum``); ``None`` where unknown.
    definition: str | None = None
    #: Who approved it, when the gate let it run on a review.
    approval: str | None = None


@dataclasses.dataclass
class StepEntry:
    """A step of a migration, for its :class:`~django_safemigrate.models.StepRecord`."""

    app_label: str
    name: str
    checksum: str
    plan: str
    index: int
    step_count: int
    kind: str
    description: str
    started_at: datetime.datetime
    lock: str = ""
    attempts: int = 1
    #: Set by the runner when the step's work is done, before its record is written.
    finished_at: datetime.datetime | None = None


def current_schema(connection: BaseDatabaseWrapper) -> str:
    """The schema ``connection`` migrates: the first of its ``search_path`` that exists.

    In a schema-per-tenant database that is the tenant's schema; the ledger's tables
    themselves may sit further along the path (in the shared schema).
    """
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_schema()")
        row = cursor.fetchone()
    return str(row[0]) if row and row[0] else "public"


def os_user() -> str:
    """The operating-system user running this process, for the ledger and reviews."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry for the uid (common in containers)
        return str(os.getuid())


class Ledger:
    """The ledger of one run, bound to the connection being migrated."""

    def __init__(self, connection: BaseDatabaseWrapper, *, command: str, argv: str) -> None:
        self.connection = connection
        self.command = command
        self.argv = argv
        self.started_at = timezone.now()
        self.lock_acquired_at: datetime.datetime | None = None
        self.run_id: int | None = None
        self.pending: list[PendingRecord] = []
        self._writable: bool | None = None
        self._ours: set[tuple[str, str]] = set()
        self._applied_ours: set[tuple[str, str]] = set()
        self.write_errors: list[str] = []
        self.counts: dict[MigrationOutcome, int] = {}
        #: The migration that raised, if one did.
        self.failed: tuple[str, str] | None = None
        #: What this run does without governance, and why (:meth:`note_ungoverned`).
        self.ungoverned: list[str] = []
        #: ``--accept-ledger-loss``: why a ledger that lost records may be adopted again.
        self.accept_loss: str | None = None
        #: Set when the ledger lost records: this run writes nothing to it.
        self.refused = False
        #: Whether this run is (or continues) the database's first deploy; ``None`` until
        #: the command has looked (:meth:`mark_first_deploy`).
        self.first_deploy: bool | None = None
        #: What the recovery-point check found (:meth:`note_recovery_check`).
        self.recovery_check: str | None = None
        #: Raises ``LockLost`` unless the migration lock is still held; called with where
        #: the run is ("before step 2/3 of shop.0004_x"). Set while the lock is held.
        self.check_lock: Callable[[str], None] = lambda where: None
        #: The run's structured events (:mod:`.events`), for the lock, the runner and the gate.
        self.events = RunEvents(command=command, database=connection.alias)
        self._schema: str | None = None

    @property
    def schema(self) -> str:
        """The schema this run migrates: what it reads of the ledger is this schema's."""
        if self._schema is None:
            self._schema = current_schema(self.connection)
        return self._schema

    @schema.setter
    def schema(self, value: str) -> None:
        self._schema = value

    # -- whether the tables are there -------------------------------------------------

    def writable(self) -> bool:
        """True while every migration of this app is applied on this database.

        The database is asked once; after that the executor reports each of this
        app's migrations it applies or unapplies (:meth:`migration_recorded`).
        """
        if self._writable is None:
            from django_safemigrate.plan import SharedDiskLoader

            # The files only (this app's keys): no graph to build.
            loader = SharedDiskLoader(None, ignore_no_migrations=True, load=False)
            loader.load_disk()
            self._ours = {key for key in loader.disk_migrations if key[0] == APP_LABEL}
            recorder = RunRecorder(self.connection)
            if recorder.has_table():
                self._applied_ours = {
                    key for key in recorder.applied_migrations() if key[0] == APP_LABEL
                }
            missing: list[str] = []
            if (APP_LABEL, "0001_initial") in self._applied_ours:
                older, missing = self._read_tables()
                if older:
                    self._refuse_older_packages_history()
            self._writable = bool(self._ours) and self._ours <= self._applied_ours
            if self._writable and missing:
                self._refuse_missing_tables(missing)
        return self._writable

    def _read_tables(self) -> tuple[bool, list[str]]:
        """In one round trip: whether ``django_safemigrate.0001_initial`` is the older
        package's (its table there, this app's run table not); this app's missing tables."""
        from django.apps import apps

        tables = [model._meta.db_table for model in apps.get_app_config(APP_LABEL).get_models()]
        with self.connection.cursor() as cursor:
            cursor.execute(
                "SELECT to_regclass(%s) IS NULL AND to_regclass(%s) IS NOT NULL, "
                "ARRAY(SELECT name FROM unnest(%s::text[]) AS name "
                "WHERE to_regclass(name) IS NULL)",
                [f"{APP_LABEL}_run", f"{APP_LABEL}_safemigration", tables],
            )
            row = cursor.fetchone()
        return bool(row[0]), list(row[1])

    def _refuse_older_packages_history(self) -> None:
        """Stop when ``django_safemigrate.0001_initial`` is the older package's migration.

        The older django-safemigrate package has an app of the same label whose one
        migration, ``0001_initial``, creates ``django_safemigrate_safemigration``. A
        database it migrated records that name as applied, so Django would take this
        app's own ``0001_initial`` (the ledger's run table) as applied too and fail on
        the next migration that alters it.
        """
        from django_safemigrate.exceptions import OlderPackageHistory

        self._writable = False
        raise OlderPackageHistory(
            f"Database '{self.connection.alias}' was migrated by the older django-safemigrate "
            f"package: django_migrations records its {APP_LABEL}.0001_initial (the "
            f"{APP_LABEL}_safemigration table) as applied, which Django takes for this app's "
            f"0001_initial, so this app's tables ({APP_LABEL}_run and the rest) would never "
            "be created. Forget that record once, without touching any table (in 'python "
            f"manage.py dbshell'): DELETE FROM django_migrations WHERE app = '{APP_LABEL}' AND "
            "name = '0001_initial'; then run 'python manage.py migrate' (or safemigrate) "
            "again, which creates this app's tables. The older "
            f"{APP_LABEL}_safemigration table is left as it is (drop it when you no longer "
            "need it). Nothing was applied."
        )

    def _refuse_missing_tables(self, missing: list[str]) -> None:
        """Stop with :class:`LedgerMissing` when tables said to exist were dropped.

        Without this, the first write fails on a missing relation in the middle of
        taking the lock, which reads like a lost connection.
        """
        from django_safemigrate.exceptions import LedgerMissing

        # Later calls (closing the run) see a ledger that cannot be written.
        self._writable = False
        raise LedgerMissing(
            f"The ledger table(s) {', '.join(missing)} are missing from database "
            f"'{self.connection.alias}', although django_migrations records the migrations "
            f"that create them ({APP_LABEL}) as applied: they were dropped by hand or left out "
            "of a restore, and the run history they held is gone. Restore them from a backup; "
            'or start a new ledger (README, "Lost ledger tables"): drop what is left of '
            f"this app's tables and functions ({APP_LABEL}_*), delete its rows from "
            f"django_migrations (DELETE FROM django_migrations WHERE app = '{APP_LABEL}') and "
            "run safemigrate again, which creates the tables and takes the applied migrations "
            "as its new baseline. Nothing was applied."
        )

    def migration_recorded(self, key: tuple[str, str], *, applied: bool) -> None:
        """Keep :meth:`writable` true to the database as this app's migrations change."""
        if key[0] != APP_LABEL:
            return
        self.writable()
        if applied:
            self._applied_ours.add(key)
        else:
            self._applied_ours.discard(key)
        self._writable = bool(self._ours) and self._ours <= self._applied_ours

    # -- events --------------------------------------------------------------------------

    def lock_acquired(self) -> None:
        self.lock_acquired_at = timezone.now()

    def note_ungoverned(self, reason: str) -> None:
        """Record on this run's row that it goes without (some) governance, and why."""
        from django_safemigrate.models import Run

        if reason in self.ungoverned:
            return
        self.ungoverned.append(reason)
        if self.run_id is not None:
            Run.objects.using(self.connection.alias).filter(pk=self.run_id).update(
                ungoverned="; ".join(self.ungoverned)
            )

    def mark_first_deploy(self, first: bool) -> None:
        """Record on this run's row whether it is part of the database's first deploy
        (:mod:`django_safemigrate.governance.first_deploy`)."""
        from django_safemigrate.models import Run

        self.first_deploy = first
        # A run of the first deploy says so now: a run that continues it after a crash
        # looks for it. ``False`` is written with the run's end (:meth:`finish`).
        if first and self.run_id is not None:
            Run.objects.using(self.connection.alias).filter(pk=self.run_id).update(
                first_deploy=first
            )

    def note_recovery_check(self, outcome: str) -> None:
        """Record on this run's row what the recovery-point check found
        (:mod:`django_safemigrate.execution.recovery`)."""
        from django_safemigrate.models import Run

        self.recovery_check = outcome
        if self.run_id is not None:
            Run.objects.using(self.connection.alias).filter(pk=self.run_id).update(
                recovery_check=outcome
            )

    def record(self, entry: PendingRecord) -> None:
        """Write ``entry`` now if the ledger tables exist, otherwise keep it for later.

        Called inside the migration's transaction for applied atomic migrations.
        """
        self.write_together(self.record_statements(entry))

    def record_many(self, entries: Sequence[PendingRecord]) -> None:
        """:meth:`record` for several entries at once: one INSERT, all rows or none."""
        self.write_together(self.record_statements(*entries))

    def record_statements(self, *entries: PendingRecord) -> list[Statement]:
        """What :meth:`record` writes, for the caller to write with other rows of the
        same transaction (:meth:`write_together`); entries kept for later give none."""
        if not entries:
            return []
        for entry in entries:
            self.counts[entry.outcome] = self.counts.get(entry.outcome, 0) + 1
        if self.writable():
            self.open_run()
            return [self._insert(*entries)]
        self.pending.extend(entries)
        return []

    def flush(self) -> None:
        """Write whatever was kept while the ledger tables did not exist yet."""
        if not self.pending or not self.writable():
            return
        self.open_run()
        pending, self.pending = self.pending, []
        self.write_together([self._insert(*pending)])

    def finish(
        self, outcome: RunOutcome, exit_code: int, message: str = "", *, after_error: bool = False
    ) -> None:
        """Close the run. Never raises: a ledger problem must not hide the real outcome."""
        from django_safemigrate.models import Run

        try:
            if after_error:
                self.reconnect_if_broken()
            if self.refused or not self.writable():
                return
            self.flush()
            self.open_run()
            assert self.run_id is not None
            using = self.connection.alias
            # The run's end and the mark: one commit.
            with transaction.atomic(using=using):
                Run.objects.using(using).filter(pk=self.run_id).update(
                    finished_at=timezone.now(),
                    outcome=outcome.value,
                    exit_code=exit_code,
                    message=message[:10000],
                    ungoverned="; ".join(self.ungoverned),
                    first_deploy=self.first_deploy,
                )
                try:
                    # A mark that cannot be moved keeps its value (lower is safe); the
                    # run's end is kept all the same.
                    with transaction.atomic(using=using):
                        continuity.advance(self.connection, self.schema)
                except DatabaseError as exc:
                    self.write_errors.append(f"The ledger's mark could not be moved: {exc}")
        except (DatabaseError, SafemigrateError) as exc:
            # A run that never held the lock (lock timeout) may find a lost ledger here (or
            # an intact one it was told to accept as lost); the next run that takes the
            # lock stops on it.
            self.write_errors.append(f"The ledger could not be written: {exc}")

    def reconnect_if_broken(self) -> None:
        """After a failure the connection may be dead (terminated backend, server gone)."""
        if self.connection.connection is not None and not self.connection.is_usable():
            self.connection.close()

    # -- writing -------------------------------------------------------------------------

    def open_run(self) -> None:
        """Create this run's row (once)."""
        from django_safemigrate.models import Run

        if self.run_id is not None:
            return
        self.check_continuity()
        run = Run.objects.using(self.connection.alias).create(
            command=self.command,
            argv=self.argv,
            database=self.connection.alias,
            schema=self.schema,
            host=socket.gethostname(),
            pid=os.getpid(),
            user=os_user(),
            started_at=self.started_at,
            lock_acquired_at=self.lock_acquired_at,
            outcome=RunOutcome.RUNNING.value,
            ungoverned="; ".join(self.ungoverned),
            first_deploy=self.first_deploy,
            recovery_check=self.recovery_check,
        )
        self.run_id = run.pk
        self.events.run_id = run.pk

    def check_continuity(self) -> None:
        """Before the first write: stop if the ledger lost records (unless accepted)."""
        from django_safemigrate.exceptions import UsageError

        try:
            intact = continuity.check(self.connection, self.schema)
        except continuity.LedgerLost:
            if self.accept_loss is None:
                self.refused = True
                raise
            lost = continuity.read(self.connection, self.schema)
            continuity.advance(self.connection, self.schema, lower=True)
            self.note_ungoverned(
                f"accepted the loss of ledger records (it held {lost.found.describe()}, its "
                f"mark {lost.mark.describe()}); applied migrations are adopted again as the "
                f"baseline: {self.accept_loss}"
            )
            return
        if self.accept_loss is not None:
            self.refused = True
            raise UsageError(
                "--accept-ledger-loss was given, but the ledger has not lost records (it holds "
                f"{intact.found.describe()}, as its mark says). Run without it. Nothing was "
                "applied."
            )

    def write_together(self, statements: Sequence[Statement]) -> None:
        """Run ``statements`` (INSERTs) as one statement: one round trip to the server.

        All but the last become data-modifying ``WITH`` queries of the last, which
        PostgreSQL runs exactly once and to completion whether or not they are read.
        """
        if not statements:
            return
        sql, params = statements[-1]
        if len(statements) > 1:
            ctes = ", ".join(f"w{i} AS ({text})" for i, (text, _) in enumerate(statements[:-1]))
            sql = f"WITH {ctes} {sql}"
            params = [p for _, ps in statements for p in ps]
        with self.connection.cursor() as cursor:
            cursor.execute(sql, params)

    def _insert(self, *entries: PendingRecord) -> Statement:
        from django_safemigrate.models import MigrationRecord

        assert self.run_id is not None
        # Plain SQL: this runs inside every migration's transaction, where the ORM's
        # per-row overhead would show in the deploy's duration.
        meta = MigrationRecord._meta
        params: list[Any] = []
        for entry in entries:
            params += [
                self.run_id,
                entry.app_label,
                entry.name,
                entry.checksum,
                entry.started_at,
                entry.finished_at,
                entry.finished_at - entry.started_at,
                entry.outcome.value,
                entry.error,
                entry.definition,
                entry.approval,
            ]
        # Several rows (kept while the tables did not exist): one INSERT, in their order.
        rows = ", ".join(["(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"] * len(entries))
        return (
            f"INSERT INTO {self.connection.ops.quote_name(meta.db_table)} "
            "(run_id, app_label, name, checksum, started_at, finished_at, duration, "
            f"outcome, error, definition, approval) VALUES {rows}",
            params,
        )

    def step_finished(self, entry: StepEntry) -> None:
        """Record a finished step: inside a transactional step's own transaction (it
        commits with the step), or after a step that ran alone in autocommit."""
        self.write_together(self.step_statements(entry))

    def step_statements(self, entry: StepEntry) -> list[Statement]:
        """What :meth:`step_finished` writes, for :meth:`write_together`."""
        from django_safemigrate.models import StepRecord

        if not self.writable():
            return []
        self.open_run()
        assert self.run_id is not None
        assert entry.finished_at is not None
        params: list[Any] = [
            self.run_id,
            entry.app_label,
            entry.name,
            entry.checksum,
            entry.plan,
            entry.index,
            entry.step_count,
            entry.kind,
            entry.description[:2000],
            entry.started_at,
            entry.finished_at,
            entry.finished_at - entry.started_at,
            entry.attempts,
            entry.lock[:40],
        ]
        table = self.connection.ops.quote_name(StepRecord._meta.db_table)
        return [
            (
                f"INSERT INTO {table} (run_id, app_label, name, checksum, plan, step_index, "
                "step_count, kind, description, started_at, finished_at, duration, "
                "attempts, lock) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                params,
            )
        ]

    # -- reading -------------------------------------------------------------------------

    def finished_steps(self, migration: Any, checksum: str, plan: str) -> set[int]:
        """Steps of ``migration`` finished since it was last applied or unapplied.

        Raises :class:`Blocked` when the migration is partly applied but its file
        (checksum) or its split into steps changed since: resuming would mix two
        versions of it.
        """
        from django_safemigrate.exceptions import Blocked
        from django_safemigrate.models import MigrationRecord, StepRecord

        if not self.writable():
            return set()
        alias = self.connection.alias
        boundary = (
            MigrationRecord.objects.using(alias)
            .filter(
                app_label=migration.app_label,
                name=migration.name,
                run__schema=self.schema,
                outcome__in=[
                    MigrationOutcome.APPLIED,
                    MigrationOutcome.UNAPPLIED,
                    MigrationOutcome.FAKED,
                    MigrationOutcome.ADOPTED,
                ],
            )
            .order_by("-finished_at")
            .values_list("finished_at", flat=True)
            .first()
        )
        # Another tenant's steps of the same migration say nothing about this schema.
        steps = StepRecord.objects.using(alias).filter(
            app_label=migration.app_label, name=migration.name, run__schema=self.schema
        )
        if boundary is not None:
            steps = steps.filter(finished_at__gt=boundary)
        rows = list(steps.values_list("step_index", "checksum", "plan"))
        if not rows:
            return set()
        from django_safemigrate.checksum import Comparison, compare

        # Steps recorded by an earlier version carry a version 1 checksum of the same file.
        same = {
            c: compare(c, migration, checksum) in (Comparison.SAME, Comparison.UPGRADED)
            for c in {r[1] for r in rows}
        }
        if any(not same[c] or p != plan for _, c, p in rows):
            raise Blocked(
                f"{migration.app_label}.{migration.name} is partly applied ({len(rows)} step(s) "
                "finished), but the migration file or its split into steps changed since. "
                "Resuming would mix two versions of it. Restore the version that was partly "
                "applied and run safemigrate again to finish it, then put the change in a new "
                "migration. Nothing was applied."
            )
        return {index for index, _, _ in rows}

    def recorded(self) -> dict[tuple[str, str], tuple[str, str | None]]:
        """The last (checksum, definition checksum) the ledger holds for each migration
        it saw applied; the definition is ``None`` for rows written before it was kept."""
        from django_safemigrate.models import MigrationRecord

        if not self.writable():
            return {}
        rows: Any = (
            MigrationRecord.objects.using(self.connection.alias)
            .filter(
                run__schema=self.schema,
                outcome__in=[
                    MigrationOutcome.APPLIED,
                    MigrationOutcome.FAKED,
                    MigrationOutcome.ADOPTED,
                ],
            )
            .order_by("app_label", "name", "started_at", "id")
            .values_list("app_label", "name", "checksum", "definition")
        )
        return {(app, name): (checksum, definition) for app, name, checksum, definition in rows}

    def mark_interrupted_runs(self) -> None:
        """Runs of this schema still "running" while we hold its lock died without
        closing their entry. Runs of other schemas hold locks of their own."""
        from django_safemigrate.models import Run

        if not self.writable() or self.run_id is None:
            return
        Run.objects.using(self.connection.alias).filter(
            outcome=RunOutcome.RUNNING.value, lock_acquired_at__isnull=False, schema=self.schema
        ).exclude(pk=self.run_id).update(
            outcome=RunOutcome.INTERRUPTED.value,
            message="The runner stopped while holding the lock (killed or lost its connection).",
        )
