"""``checkmigrations --roundtrip`` and ``--drift``: select, run, render, exit code.

The selection is ``checkmigrations``' own (``--all``, ``--since``, files, an app label and
migration name, by default the migrations not applied on ``--database``); the live
database is only read, inside a read-only transaction.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.migrations.recorder import MigrationRecorder

from django_safemigrate import selection
from django_safemigrate.analysis.database import read_only_transaction
from django_safemigrate.conf import SafemigrateSettings
from django_safemigrate.enums import ExitCode
from django_safemigrate.exceptions import DatabaseUnavailable, UsageError
from django_safemigrate.execution.run import connect, postgres_connection
from django_safemigrate.plan import (
    check_history,
    load_disk_migrations,
    sharing_disk_scan,
    validate_selection,
)
from django_safemigrate.reporting import DatabaseInfo
from django_safemigrate.schema import report
from django_safemigrate.schema.drift import run_drift
from django_safemigrate.schema.roundtrip import Key, RoundTripResult, run_roundtrip

NOTHING = "Nothing was checked."


def database_info(connection: BaseDatabaseWrapper) -> DatabaseInfo:
    major, minor = divmod(int(getattr(connection, "pg_version", 0)), 10000)
    return DatabaseInfo(connection.alias, connection.vendor, f"{major}.{minor}")


class SchemaCheck:
    def __init__(self, command: BaseCommand, options: dict[str, Any]) -> None:
        self.command = command
        self.options = options

    def run(
        self,
        app_label: str | None,
        migration_name: str | None,
        files: tuple[str, ...],
        settings: SafemigrateSettings,
    ) -> None:
        options = self.options
        if options["offline"]:
            raise UsageError(
                "--roundtrip and --drift run migrations on a throwaway database on the "
                "configured server, so they cannot run --offline. " + NOTHING
            )
        if options["format"] == "sarif":
            raise UsageError(
                "--roundtrip and --drift report as text, json or github, not sarif. " + NOTHING
            )
        with sharing_disk_scan():
            if options["drift"]:
                if app_label or files or options["all"] or options["since"]:
                    raise UsageError(
                        "--drift compares the whole database with all of its applied "
                        "migrations: give it no app label, files, --all or --since. " + NOTHING
                    )
                self.drift(settings)
            else:
                self.roundtrip(app_label, migration_name, files, settings)

    def write(self, text: str) -> None:
        self.command.stdout.write(text)

    def roundtrip(
        self,
        app_label: str | None,
        migration_name: str | None,
        files: tuple[str, ...],
        settings: SafemigrateSettings,
    ) -> None:
        options = self.options
        loader = load_disk_migrations(NOTHING)
        chosen = validate_selection(loader, app_label, migration_name, NOTHING)
        connection = postgres_connection(options["database"])
        try:
            connect(connection)
        except DatabaseUnavailable as exc:
            raise DatabaseUnavailable(
                f"{exc} The round trip runs on a throwaway database created on that server, "
                "so it needs it."
            ) from exc
        keys = selection.in_scope(loader, chosen.app_label, chosen.migration_name)
        paths = selection.migration_files(loader)
        if options["since"]:
            changed = selection.changed_files_since(options["since"])
            keys &= {key for key, file in paths.items() if file in changed}
        elif files:
            keys &= selection.given_files(loader, files)
        elif not (options["all"] or chosen.migration_name):
            with read_only_transaction(connection):
                check_history(loader, connection, nothing=NOTHING)
                recorder = MigrationRecorder(connection)
                applied = set(recorder.applied_migrations()) if recorder.has_table() else set()
            keys = selection.unapplied(keys, applied)
        selected: set[Key] = {key for key in keys if not settings.ignores(*key)}
        info = database_info(connection)
        if not selected:
            self.command.stderr.write("No migrations selected for the round trip. " + NOTHING)
            if options["format"] == "json":
                self.write(report.render_roundtrip_json(RoundTripResult(0, ()), info))
            return
        verbose = options["verbosity"] >= 2
        result = run_roundtrip(
            connection,
            selected,
            paths,
            on_progress=self.command.stderr.write if verbose else lambda line: None,
        )
        if options["format"] == "json":
            self.write(report.render_roundtrip_json(result, info))
        elif options["format"] == "github":
            self.write(report.render_roundtrip_github(result))
        else:
            self.write(report.render_roundtrip_text(result, verbose=verbose))
        if result.failed:
            bad = [m.label for m in result.migrations if not m.ok]
            raise CommandError(
                f"The round trip failed for {', '.join(bad)}: see the report on standard "
                "output. Make each reverse undo exactly what its migration does; an "
                "irreversible migration fails the round trip.",
                returncode=ExitCode.FAILED,
            )

    def drift(self, settings: SafemigrateSettings) -> None:
        options = self.options
        connection = postgres_connection(options["database"])
        result = run_drift(connection, settings.drift_ignore)
        info = database_info(connection)
        if options["format"] == "json":
            self.write(report.render_drift_json(result, info))
        elif options["format"] == "github":
            self.write(report.render_drift_github(result))
        else:
            self.write(report.render_drift_text(result))
        if result.drifted:
            raise CommandError(
                f"{result.database} drifted from its migrations: see the report on standard "
                "output. Put the change in a migration, undo it on the database, or list "
                "the object in SAFEMIGRATE['DRIFT_IGNORE'].",
                returncode=ExitCode.FAILED,
            )
