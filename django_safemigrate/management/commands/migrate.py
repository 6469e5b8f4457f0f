"""Django's ``migrate``, taking the migration lock and keeping the ledger.

Everything else is Django's: options, output at the default verbosity, signals
and exit codes. Only ``--plan`` and ``--check`` skip the lock, because they
change nothing. The lock is announced only when this run has to wait for it.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser, SystemCheckError
from django.core.management.commands import migrate as django_migrate
from django.db import connections

from django_safemigrate.checksum import warm_up
from django_safemigrate.conf import SafemigrateSettings, get_settings
from django_safemigrate.enums import ExitCode
from django_safemigrate.exceptions import LockLost, LockTimeout, UsageError
from django_safemigrate.execution.executor import ledgered_executor
from django_safemigrate.execution.ledger import Ledger
from django_safemigrate.execution.lock import Holder, command_line
from django_safemigrate.execution.run import RunRequest, governed_run, postgres_connection
from django_safemigrate.plan import sharing_disk_scan


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
        self.verbosity = options["verbosity"]
        passthrough = self.command_name == "migrate" and not _postgresql(options["database"])
        if options["plan"] or options["check_unapplied"] or passthrough:
            # A database that is not PostgreSQL (a second one in a multi-database project)
            # is migrated by Django's migrate as it is: no lock, no ledger.
            super().handle(*args, **options)
            return
        warm_up()
        settings = get_settings()
        request = self.run_request(options, settings)
        try:
            with (
                sharing_disk_scan(),
                governed_run(request, settings, self.report_wait, self.stderr.write) as ledger,
            ):
                self.handle_locked(ledger, *args, **options)
        except (LockTimeout, LockLost) as exc:
            raise CommandError(str(exc), returncode=ExitCode.LOCK_TIMEOUT) from exc
        except UsageError as exc:  # e.g. a lock connection through a pooler
            raise CommandError(str(exc), returncode=self.usage_exit_code) from exc

    def run_request(self, options: dict[str, Any], settings: SafemigrateSettings) -> RunRequest:
        lock_wait = options.get("lock_wait")
        if lock_wait is not None and lock_wait < 0:
            raise CommandError(
                "--lock-wait must be 0 or more seconds.", returncode=self.usage_exit_code
            )
        return RunRequest(
            database=options["database"],
            command=self.command_name,
            argv=command_line() if self._called_from_command_line else self.command_name,
            lock_wait=settings.lock_wait if lock_wait is None else lock_wait,
            lock_database=options.get("lock_database"),
        )

    command_name = "migrate"
    _called_from_command_line = False

    def handle_locked(self, ledger: Ledger, *args: Any, **options: Any) -> None:
        """Apply the plan; the plan itself is computed now, after the lock is held."""
        self.watch_governed(ledger, options["database"])
        with ledgered_executor(ledger):
            super().handle(*args, **options)

    def watch_governed(self, ledger: Ledger, using: str) -> None:
        """Note the governed migrations not applied yet, to mark them applied as they are."""
        from django_safemigrate.governance.store import unapplied_governed

        self._using = using
        self._governed: set[tuple[str, str]] = (
            unapplied_governed(using) if ledger.writable() else set()
        )

    def migration_progress_callback(
        self, action: str, migration: Any = None, fake: bool = False
    ) -> None:
        super().migration_progress_callback(action, migration, fake)
        if action == "apply_success" and not fake:
            from django_safemigrate.governance.signals import migration_applied

            key = (migration.app_label, migration.name)
            using = getattr(self, "_using", "default")
            if key in getattr(self, "_governed", ()):
                from django.utils import timezone

                from django_safemigrate.governance.store import mark_applied

                mark_applied(using, key, timezone.now())
            migration_applied.send(sender=type(self), app_label=key[0], name=key[1], using=using)

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
