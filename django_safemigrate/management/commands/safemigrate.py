"""``safemigrate``: the governed deploy command.

Order of work: load the migration files → connect → take the migration lock →
compute the plan (after the lock, so a runner that waited sees the work of the
one before it) → refuse edited applied migrations → apply → ledger → release.
Every outcome has its documented exit code (README, "Exit codes").
"""

from __future__ import annotations

import argparse
import contextlib
import json
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO, cast

from django.core.management.base import CommandError, CommandParser
from django.core.management.commands import migrate as django_migrate
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.exceptions import InconsistentMigrationHistory
from django.db.migrations.executor import MigrationExecutor

from django_safemigrate.analysis.database import server_major
from django_safemigrate.checksum import definition_checksum, migration_checksum
from django_safemigrate.checksum_cache import ChecksumCache
from django_safemigrate.conf import InvalidSettings, SafemigrateSettings, get_settings
from django_safemigrate.enums import (
    ChecksumPolicy,
    DatabaseOutcome,
    Direction,
    DriftPolicy,
    ExitCode,
    MigrationOutcome,
    RequestedPhase,
    Risk,
    Verdict,
)
from django_safemigrate.exceptions import Blocked, MigrationFailed, SafemigrateError, UsageError
from django_safemigrate.execution import fleet
from django_safemigrate.execution.backfill import Progress, set_progress_reporter
from django_safemigrate.execution.executor import LedgerExecutor, ledgered_executor
from django_safemigrate.execution.fleet import DatabaseResult
from django_safemigrate.execution.ledger import APP_LABEL, Ledger, PendingRecord
from django_safemigrate.execution.recorded import RunRecorder
from django_safemigrate.execution.run import connect, postgres_connection
from django_safemigrate.execution.runner import StepRunner, migration_override
from django_safemigrate.execution.steps import describe_step_locks, plan_steps
from django_safemigrate.governance.first_deploy import first_deploy
from django_safemigrate.governance.judge import Judged, approvals, judge, record
from django_safemigrate.management.commands import migrate
from django_safemigrate.plan import (
    AppliedCheck,
    check_applied,
    check_history,
    load_disk_migrations,
    plan_targets,
    refuse_conflicts,
    sharing_disk_scan,
    validate_selection,
)

#: ``migrate`` options that make no sense for a deploy command, and what to use instead.
_REFUSED_OPTIONS = {
    "check_unapplied": "--check: use 'migrate --check' or 'checkmigrations' in CI",
    "prune": "--prune: use 'migrate APP --prune', which changes only django_migrations",
}


class _Databases(argparse.Action):
    """``--database``: Django's single alias (the last one given, as before), and every
    alias given, in order, for a run over several databases."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        setattr(namespace, self.dest, values)
        given = list(getattr(namespace, "databases", None) or ())
        namespace.databases = [*given, values]


class _SeveralDatabases:
    """The parser, as ``migrate`` adds its options to it, with ``--database`` repeatable
    (its default, choices and the rest of Django's definition kept)."""

    def __init__(self, parser: CommandParser) -> None:
        self.parser = parser

    def add_argument(self, *names: str, **kwargs: Any) -> argparse.Action:
        if "--database" in names:
            kwargs["action"] = _Databases
            kwargs["help"] = (
                f"{kwargs.get('help', '')} Give it several times to migrate several "
                "databases, one after the other."
            ).strip()
        return self.parser.add_argument(*names, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.parser, name)


class Command(migrate.Command):
    help = (
        "Apply migrations for a deploy: one runner at a time under a database-wide lock, "
        "every run recorded, edited applied migrations refused. Exit codes: 0 done or nothing "
        "to do, 1 a migration failed, 2 bad usage or configuration, 3 blocked, "
        "4 lock not taken in time or lost during the run. Over several databases (--database "
        "given more than once, --all-databases or --callable-databases) each is governed on "
        "its own and the run exits 0 when all succeeded, otherwise with the most severe of "
        "their codes in the order 1, 4, 2, 3."
    )
    command_name = "safemigrate"
    usage_exit_code = ExitCode.USAGE

    def add_arguments(self, parser: CommandParser) -> None:
        # Django's --database takes one alias; this one may be given several times. A
        # run given one alias goes on exactly as before (options["database"]).
        super().add_arguments(cast(CommandParser, _SeveralDatabases(parser)))
        parser.add_argument(
            "--all-databases",
            action="store_true",
            help="Migrate every database in DATABASES whose router allows migrations, one "
            "after the other (not with --database).",
        )
        parser.add_argument(
            "--callable-databases",
            action="store_true",
            help="Migrate every database that the function SAFEMIGRATE['DATABASES_CALLABLE'] "
            "returns (databases not in DATABASES, such as one per customer), one after the "
            "other, each under the alias 'safemigrate:NAME' (not with --database or "
            "--all-databases).",
        )
        parser.add_argument(
            "--fail-fast",
            action="store_true",
            help="Over several databases: stop at the first one that does not succeed "
            "(default: go on with the others).",
        )
        parser.add_argument(
            "--report-json",
            metavar="PATH",
            default=None,
            help="Write how each database ended (alias, outcome, exit code, migrations "
            "applied, error) to PATH as JSON.",
        )
        parser.add_argument(
            "--phase",
            choices=[p.value for p in RequestedPhase],
            default=None,
            help="'pre': before the new code rolls out, stop before post-deploy migrations "
            "and what depends on them; 'post': after it, apply everything; 'all' (default: "
            "SAFEMIGRATE['DEFAULT_PHASE']): everything, for deploys without phases.",
        )
        parser.add_argument(
            "--apply-unblocked",
            action="store_true",
            help="When migrations are blocked (review missing or rejected, phase), apply those "
            "that neither are blocked nor depend on a blocked one, instead of nothing.",
        )
        parser.add_argument(
            "--accept-ledger-loss",
            metavar="WHY",
            default=None,
            help="The ledger lost records (the run stopped, exit 3) and cannot be restored: "
            "adopt the applied migrations again as the baseline. Recorded with who, where "
            "and WHY.",
        )
        parser.add_argument(
            "--status",
            action="store_true",
            help="Say who holds the migration lock, what runs now and how the last runs "
            "ended, and change nothing (read-only; never waits for or takes the lock).",
        )
        parser.add_argument(
            "--format",
            choices=("text", "json"),
            default=None,
            help="With --status: 'text' (default) or 'json' (README, \"Events and status\").",
        )
        parser.add_argument(
            "--runs",
            type=int,
            default=None,
            metavar="N",
            help="With --status: how many of the last runs to show (default 10).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if _several(options):
            self.handle_several(*args, **options)
            return
        self.verbosity = options["verbosity"]
        if options.get("check_unapplied") and not self._called_from_command_line:
            # Another command runs this one per schema with its own options (django-tenants'
            # ``migrate_schemas --check``): answer as ``migrate --check`` does there.
            super().handle(*args, **options)
            return
        try:
            for option, advice in _REFUSED_OPTIONS.items():
                if options.get(option):
                    raise UsageError(f"safemigrate does not take {advice}. Nothing was applied.")
            get_settings()
            if options.get("status") or options.get("format") or options.get("runs") is not None:
                self.show_status(options)
                return
            why = options.get("accept_ledger_loss")
            if why is not None and (not why.strip() or options["plan"]):
                raise UsageError(
                    '--accept-ledger-loss needs a reason ("why"), kept in the ledger, and '
                    "cannot be combined with --plan. Nothing was applied."
                )
            postgres_connection(options["database"])
            with sharing_disk_scan():
                self.loader = load_disk_migrations()
                validate_selection(self.loader, options["app_label"], options["migration_name"])
                for migration in self.loader.disk_migrations.values():
                    migration_override(migration)
                if options["plan"]:
                    self.show_plan(**options)
                    return
                self.run_governed(*args, **options)
        except SafemigrateError as exc:
            raise CommandError(str(exc), returncode=exc.exit_code) from exc
        except InconsistentMigrationHistory as exc:
            raise CommandError(
                f"{exc}. The database's migration history does not fit the migration files; "
                "fix the history (or the dependency) before deploying. Nothing was applied.",
                returncode=ExitCode.USAGE,
            ) from exc
        except CommandError as exc:
            # Django's own usage errors (e.g. conflicting leaf migrations).
            if exc.returncode == 1:
                exc.returncode = ExitCode.USAGE
            raise

    def handle_several(self, *args: Any, **options: Any) -> None:
        """Several databases, one after the other, each governed as a run given only it.

        A database that does not succeed does not stop the others (unless ``--fail-fast``);
        the run exits with the most severe of their exit codes (:data:`fleet.SEVERITY`).
        """
        self.verbosity = options["verbosity"]
        try:
            aliases = self.several_aliases(options)
            report_path = self.report_path(options.get("report_json"))
            # Last, once every option is known to be right: the project's code runs once.
            transient = self.callable_databases() if options.get("callable_databases") else {}
        except SafemigrateError as exc:
            raise CommandError(str(exc), returncode=exc.exit_code) from exc
        aliases = [*aliases, *transient]
        results: list[fleet.DatabaseResult] = []
        stopped = False
        for index, alias in enumerate(aliases, 1):
            if stopped:
                results.append(fleet.DatabaseResult(alias, DatabaseOutcome.NOT_RUN))
                continue
            if self.verbosity >= 1:
                self.stdout.write(
                    self.style.MIGRATE_HEADING(f"Database '{alias}' ({index}/{len(aliases)}):")
                )
            result = self.run_one(alias, args, options, transient.get(alias))
            results.append(result)
            if result.exit_code:
                self.stderr.write(
                    f"Database '{alias}' {result.outcome.value.replace('_', ' ')} "
                    f"(exit {result.exit_code}): {result.error}"
                )
                stopped = bool(options.get("fail_fast"))
        if report_path is not None:
            report_path.write_text(json.dumps(fleet.report(results), indent=2) + "\n")
        code = fleet.overall_exit_code(results)
        line = fleet.summary(results)
        if code != ExitCode.OK:
            raise CommandError(line, returncode=code)
        if self.verbosity >= 1:
            self.stdout.write(line)

    def several_aliases(self, options: dict[str, Any]) -> list[str]:
        """The databases to run, in order; the left-out ones said at verbosity 1."""
        from django.apps import apps
        from django.db import router

        for option, advice in _REFUSED_OPTIONS.items():
            if options.get(option):
                raise UsageError(f"safemigrate does not take {advice}. Nothing was applied.")
        if options.get("status") or options.get("lock_database"):
            flag = "--status" if options.get("status") else "--lock-database"
            raise UsageError(
                f"{flag} goes with one database: run it once per --database. Nothing was "
                "read or changed."
            )
        if options.get("callable_databases"):
            others = [
                flag
                for flag, given in (
                    ("--database", options.get("databases")),
                    ("--all-databases", options.get("all_databases")),
                )
                if given
            ]
            if others:
                raise UsageError(
                    "--callable-databases migrates the databases that "
                    "SAFEMIGRATE['DATABASES_CALLABLE'] returns; it cannot be combined with "
                    f"{' or '.join(others)}, which name{'s' if len(others) == 1 else ''} "
                    "databases of DATABASES. Run those in a command of their own. Nothing "
                    "was read or changed."
                )
            return []
        aliases = fleet.choose_aliases(
            options.get("databases"), bool(options.get("all_databases")), tuple(connections)
        )
        if not options.get("all_databases"):
            return aliases
        for alias in connections:
            if connections[alias].vendor != "postgresql":
                why = f"not a PostgreSQL database ({connections[alias].vendor})"
            elif not any(
                router.allow_migrate(alias, config.label)
                or any(
                    router.allow_migrate_model(alias, model)
                    for model in config.get_models(include_auto_created=True)
                )
                for config in apps.get_app_configs()
            ):
                why = "its router allows no migrations on it"
            else:
                aliases.append(alias)
                continue
            if self.verbosity >= 1:
                self.stdout.write(f"Left out database '{alias}': {why}.")
        if not aliases:
            raise UsageError(
                "--all-databases found no database to migrate: no PostgreSQL database in "
                "DATABASES has a router that allows migrations. Nothing was read or changed."
            )
        return aliases

    def callable_databases(self) -> dict[str, dict[str, Any]]:
        """``--callable-databases``: alias → settings of every database the project's
        ``DATABASES_CALLABLE`` returns, all checked before any of them is touched."""
        try:
            path = get_settings().databases_callable
        except InvalidSettings as exc:  # reported by the system checks, unless skipped
            raise UsageError(f"{exc} Nothing was read or changed.") from exc
        if path is None:
            raise UsageError(
                "--callable-databases migrates the databases that a function of the project "
                "returns, but SAFEMIGRATE['DATABASES_CALLABLE'] is not set. Set it to the "
                "dotted path of a function that returns (name, settings) pairs, such as "
                "'myproject.tenants.databases'. Nothing was read or changed."
            )
        return fleet.callable_databases(path, tuple(connections))

    def report_path(self, given: str | None) -> Path | None:
        """``--report-json``'s file, checked before any database is touched."""
        if given is None:
            return None
        path = Path(given)
        if path.is_dir() or not path.parent.is_dir():
            problem = "is a directory" if path.is_dir() else "its directory does not exist"
            raise UsageError(
                f"--report-json {given}: {problem}; give the path of a file in an existing "
                "directory. Nothing was read or changed."
            )
        return path

    def run_one(
        self,
        alias: str,
        args: Sequence[Any],
        options: dict[str, Any],
        settings_dict: dict[str, Any] | None = None,
    ) -> DatabaseResult:
        """One database's run, by a command of its own given only that alias.

        With ``settings_dict`` (a database of ``DATABASES_CALLABLE``), ``alias`` is in
        ``connections`` for this run only.
        """
        command = type(self)(
            # The streams themselves: each command styles its own output.
            stdout=cast(TextIO, self.stdout._out),
            stderr=cast(TextIO, self.stderr._out),
            no_color=bool(options.get("no_color")),
            force_color=bool(options.get("force_color")),
        )
        command._called_from_command_line = self._called_from_command_line
        applied: list[str] = []
        unapplied: list[str] = []
        progress = command.migration_progress_callback

        def track(action: str, migration: Any = None, fake: bool = False) -> None:
            progress(action, migration, fake)
            if action == "apply_success":
                applied.append(f"{migration.app_label}.{migration.name}")
            elif action == "unapply_success":
                unapplied.append(f"{migration.app_label}.{migration.name}")

        command.migration_progress_callback = track  # type: ignore[method-assign]
        one = {
            **{k: v for k, v in options.items() if k != "databases"},
            "database": alias,
            "all_databases": False,
            "callable_databases": False,
            "report_json": None,
        }
        scope: contextlib.AbstractContextManager[None] = contextlib.nullcontext()
        if settings_dict is not None:
            scope = _transient_connection(alias, settings_dict)
            # Its lock on its own server: LOCK_DATABASE names an alias of DATABASES, a
            # connection to another database.
            one["lock_database"] = alias
        with scope:
            try:
                command.handle(*args, **one)
            except CommandError as exc:
                cause = exc.__cause__
                return fleet.DatabaseResult(
                    alias,
                    fleet.outcome_of(cause, exc.returncode),
                    exc.returncode,
                    applied,
                    unapplied,
                    str(exc),
                )
            except Exception as exc:  # one database's crash does not stop the others
                return fleet.DatabaseResult(
                    alias,
                    DatabaseOutcome.FAILED,
                    ExitCode.FAILED,
                    applied,
                    unapplied,
                    f"{type(exc).__name__}: {exc}",
                )
            finally:
                connections[alias].close()
        return fleet.DatabaseResult(
            alias,
            fleet.succeeded_outcome(applied, unapplied, bool(options.get("plan"))),
            ExitCode.OK,
            applied,
            unapplied,
        )

    def show_status(self, options: dict[str, Any]) -> None:
        """``--status``: the lock's holder, the step running now, the last runs; read-only."""
        import json

        from django_safemigrate.execution.status import read_status

        runs = 10 if options.get("runs") is None else options["runs"]
        others = [
            flag
            for flag, given in (
                ("an app label", options.get("app_label")),
                ("--plan", options.get("plan")),
                ("--fake", options.get("fake")),
                ("--fake-initial", options.get("fake_initial")),
                ("--phase", options.get("phase")),
                ("--apply-unblocked", options.get("apply_unblocked")),
                ("--accept-ledger-loss", options.get("accept_ledger_loss")),
            )
            if given
        ]
        if not options.get("status") or others or not 1 <= runs <= 1000:
            problem = (
                "--format and --runs go with --status only"
                if not options.get("status")
                else f"--status cannot be combined with {', '.join(others)}"
                if others
                else f"--runs must be a whole number from 1 to 1000, not {runs}"
            )
            raise UsageError(
                f"{problem}: 'safemigrate --status [--format json] [--runs N] [--database "
                "ALIAS]' only reads the lock, the ledger and the plan. Nothing was read or "
                "changed."
            )
        status = read_status(postgres_connection(options["database"]), runs)
        if options.get("format") == "json":
            self.stdout.write(json.dumps(status.as_json(), indent=2))
            return
        for line in status.as_text():
            self.stdout.write(line)

    def show_plan(self, **options: Any) -> None:
        """``--plan``: the plan split into steps, with locks and timeouts; changes nothing."""
        from django.db.migrations.executor import MigrationExecutor

        from django_safemigrate.execution.runner import RunnerPolicy

        connection = postgres_connection(options["database"])
        connect(connection)
        executor = MigrationExecutor(connection)
        # What a run would refuse (exit 2), --plan refuses too.
        check_history(executor.loader, connection, nothing="Nothing was changed.")
        refuse_conflicts(executor.loader)
        ledger = Ledger(connection, command=self.command_name, argv="")
        if ledger.writable():  # (raises when the tables were dropped)
            self.refuse_edited_plan(ledger, connection, executor.loader)
        targets = plan_targets(executor.loader, options["app_label"], options["migration_name"])
        plan = executor.migration_plan(targets)
        settings = get_settings()
        pg_version = server_major(connection)
        judged = judge(
            connection,
            executor.loader,
            plan,
            settings,
            phase=RequestedPhase(options["phase"]) if options.get("phase") else None,
            apply_unblocked=options.get("apply_unblocked", False),
            history_readable="django_safemigrate_review" in connection.introspection.table_names(),
            render_ungoverned=True,
        )
        self.stdout.write("Planned operations:", self.style.MIGRATE_LABEL)
        if not plan or judged is None:
            self.stdout.write("  No planned migration operations.")
            return
        decisions = {d.key: d for d in judged.result.decisions}
        for line in self.bypass_lines(judged, settings, options):
            self.stdout.write(f"  {line}")
        recovery = self.recovery_line(judged, settings, options)
        if recovery:
            self.stdout.write(f"  {recovery}")
        for migration, backwards in plan:
            key = (migration.app_label, migration.name)
            report = judged.reports.get(key)
            # One line per migration: its name, then the judgement when there is one.
            line = f"{migration} (unapply)" if backwards else str(migration)
            if report is not None:
                decision = decisions[key]
                verdict = decision.verdict.value
                if judged.result.stopped and decision.verdict is Verdict.RUN:
                    verdict = "run (once nothing else is blocked)"
                phase = "" if backwards else f"{report.phase.value}, "
                line += (
                    f": {report.risk.value}, {phase}"
                    f"review {decision.review.value.replace('_', ' ')}, {verdict}"
                )
                if decision.reasons:
                    line += ": " + "; ".join(decision.reasons)
            self.stdout.write(line, self.style.MIGRATE_HEADING)
            # The SQL the judgement rendered (one walk for the whole plan, inside the
            # analysis's guards): what is shown is what was judged.
            operations = list(judged.operations.get(key, ()))
            if backwards:
                # What unapplying it runs, last operation first, as Django runs it.
                for op in operations:
                    self.stdout.write(f"    {op.operation.describe()}")
                    for statement in op.statements:
                        self.stdout.write(f"      {statement.sql.strip()}")
                continue
            report_online = report.online if report is not None else {}
            steps = plan_steps(migration, operations, pg_version, report_online)
            policy = RunnerPolicy.for_migration(settings, migration)
            for step in steps:
                self.stdout.write(
                    f"    step {step.index + 1}/{len(steps)} {step.kind.value}, "
                    f"{describe_step_locks(step, operations, policy, pg_version)}: "
                    f"{step.description}"
                )
        if judged.result.stopped:
            self.stdout.write(
                "The gate would stop this plan: nothing would be "
                f"{'unapplied' if judged.direction is Direction.BACKWARD else 'applied'} (exit 3)."
            )
            verb = "unapply" if judged.direction is Direction.BACKWARD else "apply"
            raise Blocked(
                f"The gate would stop this plan (see above): a run would {verb} nothing and "
                f"exit 3. {self.review_advice(judged, connection)}"
            )

    def recovery_line(
        self, judged: Judged, configured: SafemigrateSettings, options: dict[str, Any]
    ) -> str:
        """What the run's recovery-point check would cover (it is not run by ``--plan``)."""
        if configured.backup_check == "off" or options.get("fake") or judged.first_deploy:
            return ""
        runs = set() if judged.result.stopped else set(judged.result.to_run)
        destructive = [
            ".".join(key)
            for key, report in judged.reports.items()
            if key in runs
            and judged.direction is Direction.FORWARD
            and report.risk is Risk.DESTRUCTIVE
        ]
        if not destructive:
            return ""
        return (
            f"Recovery-point check (BACKUP_CHECK = {configured.backup_check!r}): the run checks "
            f"for a recent recovery point before applying anything, for {', '.join(destructive)}."
        )

    def bypass_lines(
        self, judged: Judged, configured: SafemigrateSettings, options: dict[str, Any]
    ) -> list[str]:
        """What ``--plan``'s run would do without governance, and why."""
        from django_safemigrate.governance.judge import without_reviews

        lines = []
        runs = [d.key for d in judged.result.decisions if d.verdict is Verdict.RUN]
        if judged.result.stopped:
            runs = []
        names = ", ".join(".".join(key) for key in runs) or "nothing"
        if judged.ungoverned:
            lines.append(
                f"Without governance: this run would apply {names} without review because "
                f"{judged.ungoverned}."
            )
        else:
            reason = without_reviews(judged.settings)
            if reason:
                unsafe = [
                    f"{'.'.join(key)} ({judged.reports[key].risk.value})"
                    for key in runs
                    if judged.reports[key].risk is not Risk.SAFE
                ]
                lines.append(
                    "Without review: this run would apply "
                    f"{', '.join(unsafe) or 'no risky or destructive migration'} without review "
                    f"because {reason}."
                )
        if options.get("fake") or options.get("fake_initial"):
            flag = "--fake" if options.get("fake") else "--fake-initial"
            lines.append(
                f"{flag}: this run would mark {names} applied without running "
                f"{'them' if options.get('fake') else 'those whose tables exist'}."
            )
        if not configured.configured and judged.settings.default_phase is RequestedPhase.PRE:
            lines.append(
                "SAFEMIGRATE is not set and the migration files carry the older package's "
                "safe markers: safemigrate runs the pre-deploy phase by default, with reviews "
                "(set SAFEMIGRATE['DEFAULT_PHASE'] to choose)."
            )
        return lines

    def handle_locked(self, ledger: Ledger, *args: Any, **options: Any) -> None:
        connection = connections[options["database"]]
        # Before the ledger's own tables are created: a usage error changes nothing.
        check_history(self.loader, connection, nothing="Nothing was applied.")
        self.check_drift(connection)
        self.step_lines: list[str] = []
        runners: list[StepRunner] = []

        def runner_factory(executor: Any) -> StepRunner:
            # One runner for the ledger's tables and the plan: what it set up and
            # checked on the session carries over.
            if runners:
                runners[0].executor = executor
                return runners[0]
            runners.append(
                StepRunner(
                    executor,
                    settings=get_settings(),
                    pg_version=server_major(connection),
                    report=self.step_lines.append,
                    notify=self.stderr.write,
                )
            )
            return runners[0]

        # The ledger's own tables go through the step runner too: Django's executor
        # records a migration with deferred SQL (indexes, foreign keys) only after its
        # transaction committed, and a crash in between leaves it applied but unrecorded.
        with ledgered_executor(ledger, runner_factory) as executor_class:
            # An up-to-date ledger (every run but the first) needs no executor here.
            if options["app_label"] != APP_LABEL and not ledger.writable():
                try:
                    self.bootstrap_ledger(
                        ledger, executor_class(connection, self.migration_progress_callback)
                    )
                except Exception as exc:
                    failed = self.migration_failed(exc, ledger, runners)
                    if failed is None:
                        raise
                    raise failed from exc
        self.refuse_edited(ledger, connection)
        allowed = self.gate(ledger, connection, options)
        self.watch_governed(ledger, connection.alias)

        previous = set_progress_reporter(self.report_backfill)
        self._last_progress = 0.0
        recovery = self.recovery_check(ledger, options, self.judged_reports)
        with ledgered_executor(
            ledger, runner_factory, recovery, self.archiver(ledger), self.explainer(options)
        ) as executor_class:
            executor_class.allowed = allowed
            executor_class.approvals = self.approvals
            executor_class.mark_governed = self.governed_statements
            executor_class.prebuilt_loader = self.gate_loader
            try:
                django_migrate.Command.handle(self, *args, **options)
            except Exception as exc:
                failed = self.migration_failed(exc, ledger, runners)
                if failed is None:
                    raise
                raise failed from exc
            finally:
                set_progress_reporter(previous)

    def check_drift(self, connection: Any) -> None:
        """``SAFEMIGRATE['DRIFT']``: before anything changes, compare the database with what
        its applied migrations build; stop (exit 3) or warn when they differ."""
        settings = get_settings()
        if settings.drift is DriftPolicy.OFF:
            return
        from django_safemigrate.schema.drift import run_drift
        from django_safemigrate.schema.report import drift_line

        result = run_drift(connection, settings.drift_ignore)
        if not result.drifted:
            if self.verbosity >= 2:
                self.stdout.write(
                    f"  No drift: {result.database} has the schema of its migrations."
                )
            return
        lines = [f"  {drift_line(d)}" for d in result.differences]
        head = (
            f"{result.database} drifted from its migrations: its schema differs from what its "
            f"{result.applied} applied migration(s) build (checkmigrations --drift):"
        )
        if settings.drift is DriftPolicy.STOP:
            raise Blocked(
                "\n".join([head, *lines])
                + "\nSAFEMIGRATE['DRIFT'] is 'stop', so nothing was applied. Put the change in a "
                "migration, undo it on the database, or list the object in "
                "SAFEMIGRATE['DRIFT_IGNORE']; then deploy again."
            )
        self.stderr.write(self.style.WARNING("Warning: " + head))
        for line in lines:
            self.stderr.write(line)

    def migration_failed(
        self, exc: Exception, ledger: Ledger, runners: list[StepRunner]
    ) -> MigrationFailed | None:
        """The exit-1 error for a migration that raised; ``None`` for errors that have a
        code of their own (usage, governance, lock)."""
        if isinstance(exc, CommandError | SafemigrateError | InconsistentMigrationHistory):
            return None
        name = ".".join(ledger.failed) if ledger.failed else "a migration"
        failure = runners[0].failure if runners else None
        if failure is not None and failure.migration == name:
            return MigrationFailed(f"Applying {name} failed: {exc}. {failure.consequences()}")
        return MigrationFailed(
            f"Applying {name} failed: {exc}. The failed step was rolled back (or, if "
            "it could not run in a transaction, will be cleaned up on the next run); "
            "finished steps and the migrations applied before it stay applied and "
            "recorded. Fix the cause and run safemigrate again to resume."
        )

    def gate(
        self, ledger: Ledger, connection: Any, options: dict[str, Any]
    ) -> frozenset[Any] | None:
        """Ask the gate which migrations of the plan may run; stop (exit 3) if it says so.

        Returns the migrations this run may apply, or ``None`` for all of them.
        """
        self.approvals: dict[tuple[str, str], str] = {}
        #: The gate's analysis of each migration it judged (the recovery-point check's).
        self.judged_reports: dict[tuple[str, str], Any] = {}
        executor = LedgerExecutor(connection)
        #: Handed on to the executor Django's migrate builds next (the same reads).
        self.gate_loader = executor.loader
        targets = plan_targets(executor.loader, options["app_label"], options["migration_name"])
        judged = judge(
            connection,
            executor.loader,
            executor.migration_plan(targets),
            get_settings(),
            phase=RequestedPhase(options["phase"]) if options.get("phase") else None,
            apply_unblocked=options.get("apply_unblocked", False),
            history_readable=ledger.writable(),
        )
        if judged is None:
            # Nothing to do still completes a first deploy that was interrupted after its
            # last migration: the run must say it belongs to it.
            ledger.mark_first_deploy(
                first_deploy(
                    connection,
                    executor.loader.applied_migrations,
                    history_readable=ledger.writable(),
                )
                is not None
            )
            return None
        ledger.mark_first_deploy(judged.first_deploy)
        self.judged_reports = dict(judged.reports)
        from django_safemigrate.governance.judge import without_reviews

        if judged.ungoverned:
            ledger.note_ungoverned(judged.ungoverned)
            if self.verbosity >= 2:
                self.stdout.write(f"  Without governance: {judged.ungoverned}.")
            return None
        reason = without_reviews(judged.settings)
        if reason:
            ledger.note_ungoverned(f"no reviews: {reason}")
        if ledger.writable():
            record(connection, judged, fake=bool(options.get("fake")), run=ledger.run_id)
        held = [d for d in judged.result.decisions if d.verdict is not Verdict.RUN]
        if judged.result.stopped:
            message = self.blocked_message(judged, connection)
            ledger.events.run_blocked(
                [
                    {
                        "migration": ".".join(d.key),
                        "verdict": d.verdict.value,
                        "review": d.review.value,
                        "reasons": list(d.reasons),
                    }
                    for d in judged.result.blocked
                ],
                message,
            )
            raise Blocked(message)
        self.approvals = approvals(connection.alias, judged) if ledger.writable() else {}
        if held and self.verbosity >= 1:
            self.stderr.write(self.style.WARNING("Held back by governance:"))
            for decision in held:
                self.stderr.write(
                    f"  {'.'.join(decision.key)} ({decision.verdict.value}): "
                    f"{'; '.join(decision.reasons)}"
                )
            if judged.result.blocked:
                self.stderr.write(self.review_advice(judged, connection))
        return frozenset(judged.result.to_run)

    def blocked_message(self, judged: Judged, connection: Any) -> str:
        blocked = judged.result.blocked
        if judged.direction is Direction.BACKWARD:
            lines = [
                f"Blocked by governance: unapplying {len(blocked)} migration(s) needs a review "
                "of the rollback, so nothing was unapplied."
            ]
        else:
            lines = [
                f"Blocked by governance: {len(blocked)} migration(s) may not run, so nothing "
                "was applied."
            ]
        for decision in blocked:
            lines.append(f"  {'.'.join(decision.key)} {'; '.join(decision.reasons)}.")
        deferred = judged.result.deferred
        if deferred:
            lines.append(
                "Also waiting for the post-deploy phase: "
                + ", ".join(".".join(d.key) for d in deferred)
                + "."
            )
        lines.append(self.review_advice(judged, connection))
        return "\n".join(lines)

    def review_advice(self, judged: Judged, connection: Any) -> str:
        from django_safemigrate.governance.store import review_url

        needs_review = [
            d for d in judged.result.blocked if d.review.value in ("pending", "stale", "rejected")
        ]
        if not needs_review:
            return (
                "Run the post-deploy phase first (safemigrate --phase post), or change the "
                "dependency, then deploy again."
            )
        where = []
        for decision in needs_review:
            url = review_url(connection.alias, decision.key, judged.direction)
            where.append(f"{'.'.join(decision.key)}" + (f" at {url}" if url else ""))
        first = needs_review[0].key
        rollback = " --rollback" if judged.direction is Direction.BACKWARD else ""
        what = "their rollback" if rollback else "them"
        return (
            "A reviewer with the 'Can approve or reject migrations' permission can review "
            f"{what} in the Django admin ({'; '.join(where)}) or from a terminal with "
            f"'manage.py reviewmigration {first[0]} {first[1]}{rollback} --approve "
            '--note "..." --as USERNAME\'; then run safemigrate again.'
        )

    def report_backfill(self, progress: Progress) -> None:
        """A progress line every few seconds and at the end: rows done, rate, time left."""
        now = time.monotonic()
        if self.verbosity < 1 or (not progress.finished and now - self._last_progress < 2.0):
            return
        self._last_progress = now
        left = ""
        total, done, rate = progress.rows_estimate, progress.rows_done, progress.rate
        if progress.finished:
            left = ", done"
        elif total and rate > 0 and total > done:
            left = f", about {(total - done) / rate:.0f}s left"
        self.stderr.write(
            f"    backfill {progress.model} ({progress.direction}): {done:,} rows, "
            f"{rate:,.0f} rows/s{left}"
        )

    def migration_progress_callback(
        self, action: str, migration: Any = None, fake: bool = False
    ) -> None:
        super().migration_progress_callback(action, migration, fake)
        if action == "apply_success":
            lines = list(getattr(self, "step_lines", []))
            if lines:
                self.step_lines.clear()  # the runner keeps appending to this same list
            split = sum("step " in line and "/" in line for line in lines) > 1
            if self.verbosity >= 2 or (self.verbosity >= 1 and split):
                for line in lines:
                    self.stdout.write(line)

    def bootstrap_ledger(self, ledger: Ledger, executor: MigrationExecutor) -> None:
        """Bring this app's own tables up to date first: governing needs the ledger.

        They are small new tables, so applying them ahead of the requested plan is
        safe, and it lets every later migration of this run be recorded and checked.
        """
        if ledger.writable():
            return
        targets = [key for key in executor.loader.graph.leaf_nodes() if key[0] == APP_LABEL]
        plan = executor.migration_plan(targets)
        if plan:
            if self.verbosity >= 1:
                self.stdout.write(self.style.MIGRATE_HEADING("Preparing the migration ledger:"))
            executor.migrate(targets, plan=plan)
        ledger.open_run()

    def refuse_edited_plan(self, ledger: Ledger, connection: Any, loader: Any) -> None:
        """``--plan``: the run would stop (exit 3) on an edited applied migration; so does it."""
        checked, _applied, _recorded = _check_applied(ledger, connection, loader)
        if checked.edited and get_settings().checksum_mismatch is ChecksumPolicy.ERROR:
            raise Blocked(
                _edited_message(checked)
                + " A run would stop here, before the plan: nothing would be applied."
            )

    def refuse_edited(self, ledger: Ledger, connection: Any) -> None:
        """Stop (exit 3) when an applied migration's file differs from what was applied.

        Applied migrations the ledger has never seen (applied before this app was
        installed) are adopted: their current checksum becomes the baseline.
        """
        loader = self.loader
        checked, applied, recorded = _check_applied(ledger, connection, loader)
        if checked.edited:
            message = _edited_message(checked)
            if get_settings().checksum_mismatch is ChecksumPolicy.ERROR:
                raise Blocked(message + " Nothing was applied.")
            self.stderr.write(self.style.WARNING("Warning: " + message))
        unverified = [r for r in checked.rebaseline if not r.verified]
        if unverified and self.verbosity >= 1:
            names = ", ".join(f"{r.key[0]}.{r.key[1]}" for r in unverified)
            self.stderr.write(
                self.style.WARNING(
                    f"Warning: the checksums recorded for {names} by an earlier version of "
                    "django_safemigrate cannot be verified: that version hashed a value by "
                    "its memory address, which differs in every process. The files are "
                    "taken as they are now and their current checksums recorded; check "
                    "them against what was applied if in doubt."
                )
            )
        if checked.reached and self.verbosity >= 1:
            names = ", ".join(f"{r.key[0]}.{r.key[1]}" for r in checked.reached)
            self.stderr.write(
                self.style.WARNING(
                    f"Note: the project code that applied migrations reach changed since they "
                    f"were applied: {names}. Their own files are unchanged, and this database "
                    "ran the code as it was then, so nothing is refused; a new database would "
                    "run the code as it is now. The current checksums are recorded as the new "
                    "baseline."
                )
            )
        if ledger.writable():
            from django.utils import timezone

            now = timezone.now()
            baselines: list[PendingRecord] = []

            def adopt(key: tuple[str, str], checksum: str) -> None:
                # A new baseline row; the rows before it stay (the ledger is append-only).
                migration = loader.disk_migrations[key]
                baselines.append(
                    PendingRecord(
                        app_label=key[0],
                        name=key[1],
                        checksum=checksum,
                        definition=definition_checksum(migration),
                        started_at=now,
                        finished_at=now,
                        outcome=MigrationOutcome.ADOPTED,
                    )
                )

            # Only the code an applied migration reaches changed; or it was recorded with
            # an older checksum algorithm, file unchanged: the current checksum becomes
            # the baseline.
            for changed in checked.reached:
                adopt(changed.key, changed.current)
            for rebaseline in checked.rebaseline:
                adopt(rebaseline.key, rebaseline.current)
            # Applied before this app was installed: adopted as they are.
            for key in sorted(applied - set(recorded)):
                if key in loader.disk_migrations:
                    adopt(key, migration_checksum(loader.disk_migrations[key]))
            # One statement for all of them: a fleet's first governed run adopts every
            # applied migration of every schema.
            ledger.record_many(baselines)
        if not ledger.writable() and self.verbosity >= 2:
            self.stdout.write(
                "  The ledger tables do not exist yet; this run is recorded once they do."
            )


def _several(options: dict[str, Any]) -> bool:
    """Whether this run goes over several databases (one alias runs as it always has)."""
    return bool(
        len(options.get("databases") or ()) > 1
        or options.get("all_databases")
        or options.get("callable_databases")
        or options.get("report_json")
    )


@contextlib.contextmanager
def _transient_connection(alias: str, settings_dict: dict[str, Any]) -> Iterator[None]:
    """``alias`` in ``django.db.connections`` while the block runs, then closed and gone.

    Everything a run does (the lock, the ledger, Django's executor, its signals' receivers)
    reaches its database through an alias, so a database of ``DATABASES_CALLABLE`` gets
    one for its run, with the defaults Django gives an entry of ``DATABASES``; hundreds of
    them never hold hundreds of connections.
    """
    configured = connections.configure_settings({DEFAULT_DB_ALIAS: settings_dict})
    connections.settings[alias] = configured[DEFAULT_DB_ALIAS]
    try:
        yield
    finally:
        try:
            connections[alias].close()
        finally:
            with contextlib.suppress(AttributeError):  # never connected
                del connections[alias]
            connections.settings.pop(alias, None)


def _edited_message(checked: AppliedCheck) -> str:
    names = "; ".join(m.describe() for m in checked.edited)
    return (
        f"Applied migrations were edited after they were applied: {names}. The database "
        "ran the old version, so the files no longer describe it. Restore the applied "
        "version and put the change in a new migration. (SAFEMIGRATE['CHECKSUM_MISMATCH']"
        " = 'warn' downgrades this to a warning.)"
    )


def _check_applied(
    ledger: Ledger, connection: Any, loader: Any
) -> tuple[AppliedCheck, set[tuple[str, str]], dict[tuple[str, str], str]]:
    """The applied migrations against the ledger: the check, what is applied, what recorded."""
    applied = set(RunRecorder(connection).applied_migrations())
    pairs = ledger.recorded()
    recorded = {key: checksum for key, (checksum, _) in pairs.items()}
    definitions = {key: definition for key, (_, definition) in pairs.items()}
    cache = ChecksumCache.for_project()
    checked = check_applied(
        loader, recorded, applied, cache.checker(recorded), definitions=definitions
    )
    cache.save()
    return checked, applied, recorded
