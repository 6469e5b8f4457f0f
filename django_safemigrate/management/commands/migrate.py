"""Django's ``migrate``, taking the migration lock and keeping the ledger.

Everything else is Django's: options, output at the default verbosity, signals
and exit codes (errors Django would show as a traceback are one paragraph here,
still exit 1). Only ``--plan`` and ``--check`` skip the lock, because they
change nothing. The lock is announced only when this run has to wait for it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.management.base import CommandError, CommandParser, SystemCheckError
from django.core.management.commands import migrate as django_migrate
from django.db import connections
from django.db.migrations.exceptions import CircularDependencyError, InconsistentMigrationHistory

from django_safemigrate.checksum import warm_up
from django_safemigrate.conf import (
    SECONDS,
    SafemigrateSettings,
    SettingsProblem,
    check_seconds,
    get_settings,
)
from django_safemigrate.enums import ExitCode
from django_safemigrate.exceptions import SafemigrateError, UsageError
from django_safemigrate.execution.archive import Archiver
from django_safemigrate.execution.continuity import LedgerLost
from django_safemigrate.execution.executor import ledgered_executor
from django_safemigrate.execution.ledger import Ledger
from django_safemigrate.execution.lock import Holder, run_command_line
from django_safemigrate.execution.run import (
    RunRequest,
    connect,
    governed_run,
    postgres_connection,
)
from django_safemigrate.plan import describe_cycle, describe_inconsistent_history, sharing_disk_scan


class Command(django_migrate.Command):
    help = (
        "Updates database schema. Manages both apps with migrations and those without. "
        "Takes the database-wide migration lock and records the run in the ledger."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument(
            "--lock-wait",
            type=float,
            default=None,
            metavar="SECONDS",
            help="How long to wait for the migration lock (default: SAFEMIGRATE['LOCK_WAIT']; "
            "0 fails at once when another run holds it).",
        )
        parser.add_argument(
            "--lock-database",
            choices=tuple(connections),
            default=None,
            help="Database alias whose session holds the lock (for a direct connection "
            "when --database goes through a pooler).",
        )

    def check(self, *args: Any, **kwargs: Any) -> None:
        try:
            super().check(*args, **kwargs)
        except SystemCheckError as exc:
            exc.returncode = self.usage_exit_code
            raise

    #: Django's own ``migrate`` exits 1 on every error; keep that.
    usage_exit_code: int = 1

    def handle(self, *args: Any, **options: Any) -> None:
        """Django's exit codes (1 for every error; 4: the lock, 3: a lost ledger), no traceback."""
        try:
            self.run_governed(*args, **options)
        except SafemigrateError as exc:
            # The lock (4) and a ledger that lost records (3) are not migrate's own errors:
            # a deploy script must be able to tell them apart.
            keep = exc.exit_code == ExitCode.LOCK_TIMEOUT or isinstance(exc, LedgerLost)
            code = exc.exit_code if keep else 1
            raise CommandError(str(exc), returncode=code) from exc
        except InconsistentMigrationHistory as exc:
            raise CommandError(
                describe_inconsistent_history(exc, "Nothing was applied."), returncode=1
            ) from exc
        except CircularDependencyError as exc:
            raise CommandError(describe_cycle(exc), returncode=1) from exc

    def run_governed(self, *args: Any, **options: Any) -> None:
        self.verbosity = options["verbosity"]
        passthrough = self.command_name == "migrate" and not _postgresql(options["database"])
        if options["plan"] or options["check_unapplied"] or passthrough:
            if not passthrough:
                # Django would show a traceback for a database it cannot reach.
                connect(postgres_connection(options["database"]))
            # A database that is not PostgreSQL (a second one in a multi-database project)
            # is migrated by Django's migrate as it is: no lock, no ledger.
            super().handle(*args, **options)
            return
        warm_up()
        settings = get_settings()
        request = self.run_request(options, settings)
        with (
            sharing_disk_scan(),
            governed_run(
                request, settings, self.report_wait, self.stderr.write, sender=type(self)
            ) as ledger,
        ):
            self.handle_locked(ledger, *args, **options)

    def run_request(self, options: dict[str, Any], settings: SafemigrateSettings) -> RunRequest:
        lock_wait = options.get("lock_wait")
        if lock_wait is not None:
            try:
                check_seconds("--lock-wait", lock_wait, SECONDS["LOCK_WAIT"], settings.lock_wait)
            except SettingsProblem as exc:
                raise CommandError(
                    f"{exc.message} Nothing was applied.", returncode=self.usage_exit_code
                ) from None
        return RunRequest(
            database=options["database"],
            command=self.command_name,
            argv=run_command_line(
                self.command_name, from_command_line=self._called_from_command_line
            ),
            lock_wait=settings.lock_wait if lock_wait is None else lock_wait,
            lock_database=options.get("lock_database"),
            ungoverned=self.ungoverned_reasons(options),
            accept_ledger_loss=options.get("accept_ledger_loss"),
        )

    def ungoverned_reasons(self, options: dict[str, Any]) -> tuple[str, ...]:
        """What this run does without governance, as far as its options say."""
        reasons = []
        if self.command_name == "migrate":
            reasons.append("plain migrate: no review or phase gate (safemigrate has them)")
        if options.get("fake"):
            reasons.append("--fake: migrations marked applied without running them")
        if options.get("fake_initial"):
            reasons.append(
                "--fake-initial: initial migrations whose tables exist marked applied "
                "without running them"
            )
        return tuple(reasons)

    command_name = "migrate"
    _called_from_command_line = False

    def handle_locked(self, ledger: Ledger, *args: Any, **options: Any) -> None:
        """Apply the plan; the plan itself is computed now, after the lock is held."""
        self.watch_governed(ledger, options["database"])
        self.mark_first_deploy(ledger, options["database"])
        self._step_lines: list[str] = []
        with ledgered_executor(
            ledger,
            self.online_runner(options, ledger),
            self.recovery_check(ledger, options),
            self.archiver(ledger),
            self.explainer(options),
        ):
            super().handle(*args, **options)

    def explainer(self, options: dict[str, Any]) -> Callable[[str], None] | None:
        """From verbosity 2: where a migration is applied as Django's executor applies it
        rather than by the linear walk (:mod:`django_safemigrate.execution.walk`)."""
        if int(options.get("verbosity", 1)) < 2:
            return None
        return self.stdout.write

    def archiver(self, ledger: Ledger) -> Archiver | None:
        """With ``SAFEMIGRATE['ARCHIVE']`` on, what copies the data a destructive step drops
        into the archive schema first; ``None`` on a first deploy (nothing to lose)."""
        settings = get_settings()
        if not settings.archive or ledger.first_deploy:
            return None
        return Archiver(ledger, settings.archive_schema, self.stderr.write)

    def recovery_check(
        self, ledger: Ledger, options: dict[str, Any], reports: dict[Any, Any] | None = None
    ) -> Any:
        """The recovery-point check to run before a plan with a destructive migration is
        applied (``SAFEMIGRATE['BACKUP_CHECK']``), or ``None`` when it is off, for a run
        that only fakes, and for a first deploy (a new database holds nothing to lose)."""
        from django_safemigrate.execution.recovery import (
            check_before_destroying,
            destructive_in_plan,
        )

        settings = get_settings()
        if settings.backup_check == "off" or options.get("fake") or ledger.first_deploy:
            return None
        connection = connections[options["database"]]

        def check(executor: Any, plan: Any) -> None:
            destructive = destructive_in_plan(connection, executor.loader, plan, settings, reports)
            check_before_destroying(
                connection,
                settings,
                destructive,
                record=ledger.note_recovery_check,
                warn=lambda message: self.stderr.write(self.style.WARNING(message)),
            )

        return check

    def mark_first_deploy(self, ledger: Ledger, alias: str) -> None:
        """Mark the run as part of the database's first deploy when it is one, so that a
        later ``safemigrate`` continues an interrupted first deploy without reviews."""
        from django_safemigrate.execution.recorded import RunRecorder
        from django_safemigrate.governance.first_deploy import first_deploy

        connection = connections[alias]
        recorder = RunRecorder(connection)
        applied = recorder.applied_migrations() if recorder.has_table() else {}
        first = first_deploy(connection, applied, history_readable=ledger.writable())
        ledger.mark_first_deploy(first is not None)

    def online_runner(self, options: dict[str, Any], ledger: Ledger) -> Any:
        """With online execution on (``SAFEMIGRATE['ONLINE']``) on PostgreSQL, and a
        database that already holds migrations, a step runner that applies the risky
        statements on existing tables in their online forms, as ``safemigrate`` does;
        otherwise ``None``: Django applies each migration. The steps are reported from
        ``-v 2``."""

        from django_safemigrate.analysis.database import server_major
        from django_safemigrate.execution.runner import StepRunner

        settings = get_settings()
        connection = connections[options["database"]]
        if not settings.online or connection.vendor != "postgresql":
            return None
        if options.get("fake") or options.get("fake_initial"):
            return None
        if ledger.first_deploy:
            # A new database (Django's test databases among them), or its first deploy
            # continued: no table is in use, so Django applies each migration as it
            # always does.
            return None
        verbosity = int(options.get("verbosity", 1))
        runners: list[StepRunner] = []

        def report(line: str) -> None:
            if verbosity >= 2:
                self._step_lines.append(line)

        def factory(executor: Any) -> StepRunner:
            if runners:
                runners[0].executor = executor
                return runners[0]
            runners.append(
                StepRunner(
                    executor,
                    settings=settings,
                    pg_version=server_major(connection),
                    report=report,
                    notify=self.stderr.write,
                )
            )
            return runners[0]

        return factory

    def watch_governed(self, ledger: Ledger, using: str) -> None:
        """Note the governed migrations not applied yet, to mark them applied as they are."""
        from django_safemigrate.governance.store import unapplied_governed

        self._using = using
        self._ledger_writable = ledger.writable()
        self._governed: set[tuple[str, str]] = (
            unapplied_governed(using) if self._ledger_writable else set()
        )
        #: Marked applied with the migration's own records (:meth:`governed_statements`).
        self._marked: set[tuple[str, str]] = set()

    def governed_statements(self, key: tuple[str, str], now: Any) -> list[Any]:
        """The statement marking ``key``'s review record applied, for the executor to
        write with the migration's records: one commit, and never one without the other."""
        from django_safemigrate.governance.store import mark_applied_statement

        if key not in getattr(self, "_governed", ()):
            return []
        self._marked.add(key)
        return [mark_applied_statement(self._using, key, now)]

    def migration_progress_callback(
        self, action: str, migration: Any = None, fake: bool = False
    ) -> None:
        super().migration_progress_callback(action, migration, fake)
        if action == "apply_success":
            # The steps of the migration just applied (from -v 2), after Django's "OK".
            for line in getattr(self, "_step_lines", ()):
                self.stdout.write(line)
            self._step_lines = []
        if action == "apply_success" and not fake:
            from django_safemigrate.governance.signals import migration_applied

            key = (migration.app_label, migration.name)
            using = getattr(self, "_using", "default")
            if key in getattr(self, "_governed", ()) and key not in getattr(self, "_marked", ()):
                from django.utils import timezone

                from django_safemigrate.governance.store import mark_applied

                mark_applied(using, key, timezone.now())
            migration_applied.send(sender=type(self), app_label=key[0], name=key[1], using=using)
        if (
            action == "unapply_success"
            and not fake
            and getattr(self, "_ledger_writable", False)
            # Unapplying this app's own tables: its records may be gone with them.
            and migration.app_label != "django_safemigrate"
        ):
            from django.utils import timezone

            from django_safemigrate.enums import Direction
            from django_safemigrate.governance.store import mark_applied

            # Its rollback's record (if the gate judged one) says it ran; its forward
            # record waits again.
            key = (migration.app_label, migration.name)
            mark_applied(
                getattr(self, "_using", "default"), key, timezone.now(), Direction.BACKWARD
            )

    def report_wait(self, holder: Holder | None, waited: float, wait: float, first: bool) -> None:
        if self.verbosity < 1:
            return
        who = holder.describe() if holder else "another session"
        if first:
            message = f"Waiting for the migration lock (up to {wait:g}s): it is held by {who}."
        else:
            message = f"Still waiting for the migration lock after {waited:.0f}s: held by {who}."
        self.stderr.write(message)


def _postgresql(alias: str) -> bool:
    """Whether ``alias`` is a PostgreSQL database (an unusable one is left to Django)."""
    try:
        postgres_connection(alias)
    except UsageError:
        return False
    return True
