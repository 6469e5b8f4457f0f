"""``restorearchive``: put back the data a destructive step archived (README, "Backups and
archive"). Takes the migration lock, so it never runs beside a deploy."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError, connections

from django_safemigrate.conf import get_settings
from django_safemigrate.exceptions import SafemigrateError, UsageError
from django_safemigrate.execution.lock import Holder, migration_lock
from django_safemigrate.execution.restore import plan_restore, run_restore
from django_safemigrate.execution.run import connect, postgres_connection


class Command(BaseCommand):
    help = (
        "Restore the data a destructive step copied into the archive schema "
        "(SAFEMIGRATE['ARCHIVE']): a dropped column's values by primary key (the column is "
        "added back when missing), or a dropped table's rows into the table. Exit codes: "
        "0 restored (or shown, with --dry-run), 1 the restore failed and was rolled back, "
        "2 bad usage (unknown archive, missing target, type mismatch; nothing changed), "
        "4 the migration lock was not taken in time."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("archive_id", type=int, metavar="ARCHIVE_ID")
        parser.add_argument(
            "--into",
            metavar="TABLE.COLUMN",
            default=None,
            help="Where to restore: TABLE.COLUMN for a column (added when missing), TABLE for "
            "a table's rows. Default: where the data was dropped from.",
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Show what would run, change nothing.",
        )
        parser.add_argument("--database", default="default")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            self.restore(options)
        except SafemigrateError as exc:
            raise CommandError(str(exc), returncode=exc.exit_code) from exc

    def restore(self, options: dict[str, Any]) -> None:
        connection = postgres_connection(options["database"])
        connect(connection)
        if "django_safemigrate_archive" not in connection.introspection.table_names():
            raise UsageError(
                "This database has no archive table (django_safemigrate_archive): run "
                "safemigrate first, which creates the ledger. Nothing was changed."
            )
        if options["dry_run"]:
            self.show(plan_restore(connection, options["archive_id"], options["into"]), dry=True)
            return
        settings = get_settings()
        with migration_lock(
            target=connection,
            lock_via=connections[settings.lock_database or options["database"]],
            command="restorearchive",
            wait=settings.lock_wait,
            poll_interval=settings.lock_poll_interval,
            on_wait=self.report_wait,
        ):
            restore = plan_restore(connection, options["archive_id"], options["into"])
            self.show(restore, dry=False)
            try:
                counts = run_restore(connection, restore)
            except DatabaseError as exc:
                raise SafemigrateError(
                    f"Restoring into {restore.target} failed: {str(exc).strip()}. It ran in one "
                    "transaction, which was rolled back: nothing was changed."
                ) from exc
        for (what, _sql), count in zip(restore.statements, counts, strict=True):
            self.stdout.write(f"  {what}: {max(count, 0)} row(s)")
        self.stdout.write(self.style.SUCCESS(f"Restored into {restore.target}."))

    def show(self, restore: Any, *, dry: bool) -> None:
        self.stdout.write(restore.summary)
        for what, sql in restore.statements:
            self.stdout.write(f"  {what}:")
            self.stdout.write(f"    {sql};")
        if dry:
            self.stdout.write("Dry run: nothing was changed.")

    def report_wait(self, holder: Holder | None, waited: float, first: bool) -> None:
        if first:
            who = holder.describe() if holder else "another session"
            self.stderr.write(f"Waiting for the migration lock: it is held by {who}.")
