"""``checkmigrations``: the CI command. Findings with safe alternatives; exit codes per policy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser, SystemCheckError
from django.db import connections

from django_safemigrate import lockfile
from django_safemigrate.analysis.check import CheckRequest, run_check
from django_safemigrate.analysis.registry import rules
from django_safemigrate.checks import LOCKFILE_REPORTED_BY_COMMAND
from django_safemigrate.checksum import migration_checksum
from django_safemigrate.conf import SettingsProblem, get_settings, parse_fail_on
from django_safemigrate.enums import ExitCode
from django_safemigrate.exceptions import SafemigrateError, UsageError
from django_safemigrate.plan import load_disk_migrations
from django_safemigrate.reporting import (
    render_explanation,
    render_github,
    render_json,
    render_rule_list,
    render_text,
)
from django_safemigrate.sarif import render_sarif
from django_safemigrate.sql import quiet_collector


class Command(BaseCommand):
    help = (
        "Judge migrations by the SQL they will run: risky and destructive operations with the "
        "safe alternative. Exit codes: 0 nothing at or above --fail-on, 1 findings or problems "
        "at or above it, 2 bad usage or configuration."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "targets",
            nargs="*",
            metavar="app_label [migration_name] | FILE.py",
            help="Only this app's migrations, or only this migration (a prefix); or the "
            "migrations in these files (paths ending in .py, as pre-commit passes them).",
        )
        which = parser.add_mutually_exclusive_group()
        which.add_argument("--all", action="store_true", help="Every migration.")
        which.add_argument(
            "--since",
            metavar="GIT_REF",
            help="Migrations added or changed since GIT_REF (from the merge base; "
            "uncommitted and untracked files count).",
        )
        parser.add_argument(
            "--database",
            default="default",
            choices=tuple(connections),
            help="Database for table sizes, server version and what is applied "
            "(default: 'default'). Without --all/--since, the migrations not applied there.",
        )
        parser.add_argument("--format", choices=("text", "json", "github", "sarif"), default="text")
        parser.add_argument(
            "--fail-on",
            choices=("risky", "destructive", "never"),
            default=None,
            help="Lowest risk that fails the command (default: SAFEMIGRATE['FAIL_ON'], risky).",
        )
        parser.add_argument(
            "--pg-version",
            type=int,
            metavar="N",
            help="Judge for PostgreSQL major version N (default: the connected server's, or "
            "offline the oldest version this Django supports).",
        )
        parser.add_argument(
            "--offline", action="store_true", help="Do not connect to any database."
        )
        parser.add_argument("--lockfile", type=Path, help="Path of the lockfile.")
        parser.add_argument(
            "--update-lockfile",
            action="store_true",
            help="Write every migration's checksum to the lockfile, then exit.",
        )
        check = parser.add_mutually_exclusive_group()
        check.add_argument(
            "--roundtrip",
            action="store_true",
            help="Instead of judging the SQL: apply the selected migrations on a throwaway "
            "database beside --database's, unapply them one by one, apply them again; every "
            "reverse must restore the schema (exit 1 when one does not or is irreversible).",
        )
        check.add_argument(
            "--drift",
            action="store_true",
            help="Instead of judging the SQL: compare --database's schema (read-only) with "
            "what its applied migrations build on a throwaway database (exit 1 on drift).",
        )
        parser.add_argument("--explain", metavar="CODE", help="Print a rule's documentation.")
        parser.add_argument("--list-rules", action="store_true", help="List every rule.")

    def check(self, *args: Any, **kwargs: Any) -> None:
        token = LOCKFILE_REPORTED_BY_COMMAND.set(True)
        try:
            super().check(*args, **kwargs)
        except SystemCheckError as exc:
            exc.returncode = ExitCode.USAGE
            raise
        finally:
            LOCKFILE_REPORTED_BY_COMMAND.reset(token)

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            with quiet_collector():
                self._handle(**options)
        except SafemigrateError as exc:
            raise CommandError(str(exc), returncode=exc.exit_code) from exc

    def _handle(self, **options: Any) -> None:
        if options["list_rules"]:
            self.stdout.write(render_rule_list(list(rules().values())))
            return
        if options["explain"]:
            code = options["explain"].upper()
            if code not in rules():
                raise UsageError(
                    f"There is no rule {options['explain']!r}; --list-rules lists them."
                )
            self.stdout.write(render_explanation(rules()[code]))
            return
        settings = get_settings()
        path = options["lockfile"] or lockfile.default_path(settings.lockfile)
        if options["update_lockfile"]:
            loader = load_disk_migrations("Nothing was checked.")
            checksums = {
                key: migration_checksum(m)
                for key, m in loader.disk_migrations.items()
                if not settings.ignores(*key)
            }
            lockfile.write(path, checksums)
            self.stderr.write(f"Wrote {len(checksums)} checksums to {path}.")
            return
        if options["pg_version"] is not None and not 9 <= options["pg_version"] <= 99:
            raise UsageError(
                f"--pg-version {options['pg_version']} is not a PostgreSQL major version."
            )
        fail_on = settings.fail_on
        if options["fail_on"]:
            try:
                fail_on = parse_fail_on(options["fail_on"], "--fail-on", check_id="")
            except SettingsProblem as exc:  # pragma: no cover - argparse limits the choices
                raise UsageError(exc.message) from None
        app_label, migration_name, files = _targets(options["targets"], options)
        if options["roundtrip"] or options["drift"]:
            from django_safemigrate.schema.command import SchemaCheck

            SchemaCheck(self, options).run(app_label, migration_name, files, settings)
            return
        run = run_check(
            CheckRequest(
                app_label=app_label,
                migration_name=migration_name,
                files=files,
                all=options["all"],
                since=options["since"],
                database=options["database"],
                fail_on=fail_on,
                pg_version=options["pg_version"],
                offline=options["offline"],
                lockfile=path,
            ),
            settings,
        )
        for note in run.notes:
            self.stderr.write(note)
        renderer = {"json": render_json, "github": render_github, "sarif": render_sarif}.get(
            options["format"]
        )
        output = (
            renderer(run.result)
            if renderer
            else render_text(run.result, verbose=options["verbosity"] >= 2)
        )
        self.stdout.write(output)
        if run.result.failed:
            result = run.result
            policy = result.fail_on.value if result.fail_on else "never"
            where = "above" if options["format"] == "text" else "in the report on standard output"
            raise CommandError(
                f"{len(result.blocking())} finding(s) at or above --fail-on {policy} and "
                f"{len(result.failing_problems())} project problem(s): see {where}.",
                returncode=ExitCode.FAILED,
            )


def _targets(
    targets: list[str], options: dict[str, Any]
) -> tuple[str | None, str | None, tuple[str, ...]]:
    """``app_label [migration_name]``, or migration files (any argument ending in .py)."""
    if any(target.endswith(".py") for target in targets):
        if options["all"] or options["since"]:
            raise UsageError(
                "Migration files select the migrations to check by themselves; give them "
                "without --all or --since."
            )
        not_files = [target for target in targets if not target.endswith(".py")]
        if not_files:
            raise UsageError(
                f"{', '.join(not_files)}: give either an app label (and a migration name) or "
                "paths of migration files ending in .py, not both."
            )
        return None, None, tuple(targets)
    if len(targets) > 2:
        raise UsageError(
            f"Too many arguments ({' '.join(targets)}): checkmigrations takes an app label "
            "and a migration name, or paths of migration files ending in .py."
        )
    padded = [*targets, None, None]
    return padded[0], padded[1], ()
