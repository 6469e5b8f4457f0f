"""One ``checkmigrations`` run: select, render, judge, and add project-level problems."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

from django.db import DatabaseError
from django.db.migrations.recorder import MigrationRecorder

from django_safemigrate import lockfile, scope, selection
from django_safemigrate.analysis import project
from django_safemigrate.analysis.analyzer import AnalysisOptions, analyse_and_walk
from django_safemigrate.analysis.database import (
    offline_connection,
    oldest_supported,
    server_major,
    table_sizes,
)
from django_safemigrate.analysis.findings import MigrationReport, Problem
from django_safemigrate.conf import SafemigrateSettings
from django_safemigrate.enums import Risk
from django_safemigrate.exceptions import DatabaseUnavailable
from django_safemigrate.execution.run import connect, describe_database, postgres_connection
from django_safemigrate.plan import (
    check_history,
    load_disk_migrations,
    sharing_disk_scan,
    validate_selection,
)
from django_safemigrate.reporting import DatabaseInfo, Result


@dataclasses.dataclass(frozen=True)
class CheckRequest:
    app_label: str | None = None
    migration_name: str | None = None
    #: Migration files (paths) to check: the pre-commit hook's selection.
    files: tuple[str, ...] = ()
    all: bool = False
    since: str | None = None
    database: str = "default"
    fail_on: Risk | None = Risk.RISKY
    pg_version: int | None = None
    offline: bool = False
    lockfile: Path | None = None

    @property
    def explicit(self) -> bool:
        """The migrations are named (``--all``, ``--since``, files): none needs a database."""
        return bool(self.all or self.since or self.files)


@dataclasses.dataclass(frozen=True)
class CheckRun:
    result: Result
    notes: tuple[str, ...]


def run_check(request: CheckRequest, settings: SafemigrateSettings) -> CheckRun:
    # The ledger's SM903 check builds a loader of its own; it shares this run's disk scan.
    with sharing_disk_scan():
        return _run_check(request, settings)


def _run_check(request: CheckRequest, settings: SafemigrateSettings) -> CheckRun:
    notes: list[str] = []
    loader = load_disk_migrations("Nothing was checked.")
    chosen = validate_selection(
        loader, request.app_label, request.migration_name, "Nothing was checked."
    )
    connection = postgres_connection(request.database)

    live = False
    if not request.offline:
        try:
            connect(connection)
            live = True
        except DatabaseUnavailable as exc:
            if not (request.explicit or chosen.migration_name):
                raise DatabaseUnavailable(
                    f"{exc} Without --all, --since or a migration name, checkmigrations checks "
                    "the migrations not yet applied to that database, so it needs it. Use "
                    "--all or --since REF (with --pg-version N) to check without a database."
                ) from exc
            notes.append(
                f"Database {describe_database(connection)} is not reachable; judging offline "
                "(no table sizes; the names of constraints the SQL drops are Django's defaults)."
            )

    applied: set[tuple[str, str]] = set()
    if live:
        recorder = MigrationRecorder(connection)
        if recorder.has_table():
            applied = set(recorder.applied_migrations())
        if not (request.explicit or chosen.migration_name):
            # "Not yet applied" means nothing on a history that does not fit the files.
            check_history(loader, connection, nothing="Nothing was checked.")

    path = request.lockfile or lockfile.default_path(settings.lockfile)
    keys, locked_scope = _selection(request, loader, chosen, applied, path)
    keys = {key for key in keys if not settings.ignores(*key)}

    if live:
        pg_version = request.pg_version or server_major(connection)
        render_with = connection
        sizes = table_sizes(connection)
        info = DatabaseInfo(
            alias=connection.alias,
            vendor=connection.vendor,
            server_version=_server_version(connection),
        )
    else:
        pg_version = request.pg_version or oldest_supported(connection)
        render_with = offline_connection(connection, pg_version)
        sizes = {}
        info = None

    settings, options = _analysis_options(settings, loader, pg_version)
    # SM901 compares the models with the state after every migration: when it runs, the
    # analysis walks the whole history once and hands that state over.
    check_models = not chosen.migration_name
    reports, final_state = analyse_and_walk(
        loader,
        keys,
        render_with,
        options,
        applied=applied,
        table_info=sizes.get,
        live=live and not (request.explicit or chosen.migration_name),
        whole_graph=check_models,
    )
    reports = scope.scoped(reports, settings)
    # Rules switched off in settings disappear from the reports.
    off = {code for code, severity in settings.rules.items() if severity is None}
    if off:
        reports = [
            dataclasses.replace(r, findings=tuple(f for f in r.findings if f.code not in off))
            for r in reports
        ]

    problems: list[Problem] = []
    problems += project.conflicts(loader)
    if check_models:
        ignored_apps = {entry for entry in settings.ignore if "." not in entry}
        problems += project.missing_migrations(loader, ignored_apps, final_state)
    if live:
        problems += _edited_applied(connection, loader, applied)
    problems += project.lockfile_problems(loader, lockfile.read(path), str(path), only=locked_scope)
    problems = scope.scoped_problems([p for p in problems if p.code not in off], loader, settings)

    return CheckRun(
        Result(
            tuple(reports),
            tuple(problems),
            info,
            request.fail_on,
            _review_states(connection if live else None, reports, settings, loader),
        ),
        tuple(notes),
    )


def _selection(
    request: CheckRequest,
    loader: Any,
    chosen: Any,
    applied: set[tuple[str, str]],
    lockfile_path: Path,
) -> tuple[set[tuple[str, str]], set[tuple[str, str]] | None]:
    """The migrations to judge, and those to compare with the lockfile (``None``: all).

    The lockfile is compared for every migration, except with ``--since`` when the lockfile
    did not change: a migration file that did not change either matches it as it did at
    the reference, so only the changed files need their checksums.
    """
    keys = selection.in_scope(loader, chosen.app_label, chosen.migration_name)
    if request.since:
        changed_files = selection.changed_files_since(request.since)
        changed = {
            key for key, file in selection.migration_files(loader).items() if file in changed_files
        }
        unchanged_lockfile = os.path.realpath(lockfile_path) not in changed_files
        return keys & changed, changed if unchanged_lockfile else None
    if request.files:
        given = selection.given_files(loader, request.files)
        return keys & given, given
    if not (request.all or chosen.migration_name):
        keys = selection.unapplied(keys, applied)
    return keys, None


def _server_version(connection: object) -> str:
    raw = int(getattr(connection, "pg_version", 0))
    major, minor = divmod(raw, 10000)
    return f"{major}.{minor}"


def _edited_applied(
    connection: object, loader: object, applied: set[tuple[str, str]]
) -> list[Problem]:
    from django_safemigrate.execution.ledger import Ledger

    ledger = Ledger(connection, command="checkmigrations", argv="")  # type: ignore[arg-type]
    try:
        recorded = ledger.recorded()
    except DatabaseError:
        return []
    return project.edited_applied(
        loader,  # type: ignore[arg-type]
        {key: checksum for key, (checksum, _) in recorded.items()},
        applied,
        {key: definition for key, (_, definition) in recorded.items()},
    )


def _review_states(
    connection: Any, reports: list[MigrationReport], settings: SafemigrateSettings, loader: Any
) -> dict[tuple[str, str], tuple[bool, str]]:
    """Whether each migration needs a review, and where it stands (from the database)."""
    from django_safemigrate.governance.gate import review_reason, review_state

    past: dict[tuple[str, str], Any] = {}
    keys = [(r.app_label, r.name) for r in reports]
    checksums = {(r.app_label, r.name): r.checksum for r in reports}
    if (
        connection is not None
        and keys
        and "django_safemigrate_review" in connection.introspection.table_names()
    ):
        from django_safemigrate.governance.store import for_current_file, past_reviews

        past = {
            key: for_current_file(reviews, loader.disk_migrations[key], checksums[key])
            for key, reviews in past_reviews(connection.alias, keys).items()
        }
    states = {}
    for report in reports:
        key = (report.app_label, report.name)
        required = report.governed and (
            review_reason(report.risk, report.kinds, settings.review, settings.review_kinds)
            is not None
        )
        state = review_state(past.get(key, ()), report.checksum, required=required)
        states[key] = (required, state.value)
    return states


def _effective(settings: SafemigrateSettings, loader: Any) -> SafemigrateSettings:
    """The settings the gate uses (a project of older-package markers defaults to ``pre``)."""
    from django_safemigrate.governance.judge import effective_settings

    return effective_settings(settings, list(loader.disk_migrations.values()))


def _analysis_options(
    settings: SafemigrateSettings, loader: Any, pg_version: int
) -> tuple[SafemigrateSettings, AnalysisOptions]:
    settings = _effective(settings, loader)
    return settings, AnalysisOptions(
        pg_version=pg_version,
        small_table_rows=settings.small_table_rows,
        severity_overrides=dict(settings.rules),
        infer_phase=settings.infer_phase,
        online=settings.online,
    )
