"""``safemigrate_schemas``: django-tenants' ``migrate_schemas`` for deploys of a fleet.

Every schema is migrated as ``migrate_schemas`` migrates it (django-tenants' per-schema
run, which runs ``safemigrate`` there through ``TENANT_BASE_MIGRATE_COMMAND``), on the
executor given (``standard``, ``multiprocessing``, ``subprocess``). What this adds:

- one query across the fleet decides which tenant schemas have anything to apply; the
  others are not visited (``--every-schema`` visits them all);
- ``--shard INDEX/COUNT`` takes the tenant schemas whose name hashes to that shard, so
  the pods of a Kubernetes Indexed Job split the fleet between them;
- a schema that fails or is blocked does not stop the others (``--fail-fast`` does);
  ``--canary K`` runs the first K schemas first and stops if one of them fails;
- a summary line, ``--report-json PATH`` with each schema's outcome, and the most severe
  exit code of the schemas (1 failed, 4 lock, 2 usage, 3 blocked; 0 when all succeeded).

The public schema is migrated first, in this process, by every shard (its lock makes
the others wait, then find nothing to do); when it does not succeed, no tenant is run.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

from django.core.checks import Tags
from django.core.management.base import CommandError, CommandParser
from django.db import DatabaseError, connections
from django.utils import timezone

from django_safemigrate.enums import DatabaseOutcome, ExitCode
from django_safemigrate.exceptions import UsageError
from django_safemigrate.execution.fleet import DatabaseResult, outcome_of, overall_exit_code
from django_safemigrate.execution.lock import close_parked_lock_sessions, reused_lock_sessions
from django_safemigrate.plan import sharing_disk_scan

try:
    from django_tenants.management.commands.migrate_schemas import MigrateSchemasCommand
except ImportError:  # django-tenants is not installed: the command says so when run
    from django.core.management.base import BaseCommand as MigrateSchemasCommand

#: This command's own options, not passed on to each schema's run.
OWN_OPTIONS = ("shard", "canary", "fail_fast", "report_json", "every_schema", "status")
#: Options with which every schema must be visited (they read or change what the fleet
#: query reads).
VISIT_ALL = ("plan", "check_unapplied", "fake", "fake_initial", "prune", "run_syncdb")
ENGINES = ("standard", "multiprocessing", "subprocess")

#: One schema's run: exit code (``None``: not run) and error text.
Ran = tuple[int | None, str | None]


class Command(MigrateSchemasCommand):  # type: ignore[misc]
    help = (
        "Migrates the public schema, then every tenant schema that has migrations to apply "
        "(one query across the fleet), governed, on django-tenants' executors; shards, "
        "canary, per-schema outcomes. Exit codes: 0 all succeeded, 1 a schema failed, "
        "2 usage, 3 a schema was blocked, 4 a schema's lock."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument(
            "--shard",
            metavar="INDEX/COUNT",
            help="Only the tenant schemas of shard INDEX (0-based) of COUNT, by a hash of "
            "the schema name (a Kubernetes Indexed Job: --shard $JOB_COMPLETION_INDEX/N).",
        )
        parser.add_argument(
            "--canary",
            type=int,
            default=0,
            metavar="K",
            help="Run the first K tenant schemas first, one at a time; stop if one fails.",
        )
        parser.add_argument(
            "--fail-fast",
            action="store_true",
            help="Start no more schemas once one has failed or been blocked.",
        )
        parser.add_argument(
            "--report-json", metavar="PATH", help="Write each schema's outcome to PATH."
        )
        parser.add_argument(
            "--status",
            action="store_true",
            help="Change nothing: each schema's state (up to date, pending, or how its last "
            "run ended) from one query across the fleet, and the fleet's summary.",
        )
        parser.add_argument(
            "--every-schema",
            action="store_true",
            help="Visit every tenant schema, also those the fleet query finds up to date.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            # One schema after another in this process: each schema's lock is taken on
            # the session the previous schema's run released its own on. The migration
            # files are the same for every schema: scanned once, one graph (rebuilt only
            # where squashed migrations are applied differently), also in the pool's
            # workers, which are forked inside this block.
            with reused_lock_sessions(), sharing_disk_scan():
                code = self.run_fleet(*args, **options)
        except UsageError as exc:
            raise CommandError(str(exc), returncode=ExitCode.USAGE) from exc
        if code != ExitCode.OK:
            raise CommandError(self.summary_line, returncode=code)

    def run_fleet(self, *args: Any, **options: Any) -> int:
        if not hasattr(MigrateSchemasCommand, "autodetector"):
            raise UsageError(
                "safemigrate_schemas migrates the schemas of a django-tenants project, and "
                "django-tenants is not installed. Nothing was read or changed."
            )
        from django_tenants.utils import get_public_schema_name, has_multi_type_tenants

        own: dict[str, Any] = {key: options.get(key) for key in OWN_OPTIONS}
        own["canary"] = own["canary"] or 0
        passed = {k: v for k, v in options.items() if k not in OWN_OPTIONS}
        super(MigrateSchemasCommand, self).handle(*args, **passed)
        if has_multi_type_tenants():
            raise UsageError(
                "safemigrate_schemas does not run multi-type tenants (HAS_MULTI_TYPE_TENANTS); "
                "use migrate_schemas, which runs each schema governed all the same. Nothing "
                "was read or changed."
            )
        codename, shard, report_path = self.checked(own)
        public = get_public_schema_name()
        results: list[DatabaseResult] = []
        tenants = self.tenant_schemas(public) if self.sync_tenant else []
        if shard is not None:
            from django_safemigrate.tenants import in_shard

            tenants = in_shard(tenants, *shard)
        if own["status"]:
            schemas = ([public] if self.sync_public else []) + tenants
            return self.show_status(schemas, report_path, shard)
        if self.options.get("plan") and self.options["verbosity"] >= 1:
            # Where each schema stands before its plan: the fleet's state, one query.
            self.write_states(([public] if self.sync_public else []) + tenants, shard)
        if not self.options.get("skip_checks"):
            # The project's code and settings are the same in every schema: checked once
            # for the fleet (the rest before this command's handle), not once per schema.
            self.check(databases=[self.options["database"]], tags=[Tags.database])
            self.options["skip_checks"] = True
        if self.sync_public:
            first = self.run_inline(codename, public, None, None)
            results.append(self.result(public, first))
            if first[0] != ExitCode.OK:
                results += [DatabaseResult(t, DatabaseOutcome.NOT_RUN) for t in tenants]
                return self.finish(results, report_path, shard)
        work = tenants
        if tenants and not own["every_schema"] and not self.visit_all():
            from django_safemigrate.plan import SharedDiskLoader
            from django_safemigrate.tenants import expected_migrations, schemas_with_work

            loader = SharedDiskLoader(None, ignore_no_migrations=True)
            connection = connections[self.options["database"]]
            work = schemas_with_work(connection, tenants, expected_migrations(loader))
            waiting = set(work)
            results += [
                DatabaseResult(t, DatabaseOutcome.NOTHING_TO_DO, ExitCode.OK)
                for t in tenants
                if t not in waiting
            ]
            if self.options["verbosity"] >= 1:
                self.stdout.write(
                    f"{len(tenants) - len(work)} of {len(tenants)} tenant schema(s) have "
                    f"nothing to apply; migrating {len(work)}."
                )
        canary, rest = work[: own["canary"]], work[own["canary"] :]
        ran: dict[str, Ran] = {}
        if canary:
            ran.update(self.fan_out("standard", canary, stop=True))
        if all(code == ExitCode.OK for code, _ in ran.values()):
            ran.update(self.fan_out(codename, rest, stop=bool(own["fail_fast"])))
        results += [self.result(schema, ran.get(schema, (None, None))) for schema in work]
        return self.finish(results, report_path, shard)

    def checked(self, own: dict[str, Any]) -> tuple[str, tuple[int, int] | None, Path | None]:
        """The executor, shard and report path; :class:`UsageError` before anything is read."""
        codename = self.executor or os.environ.get("EXECUTOR") or "standard"
        if codename not in ENGINES:
            raise UsageError(
                f"--executor {codename!r} is not one of {', '.join(ENGINES)}. Nothing was "
                "read or changed."
            )
        shard = None
        if own["shard"]:
            from django_safemigrate.tenants import parse_shard

            shard = parse_shard(own["shard"])
        if own["canary"] < 0:
            raise UsageError("--canary takes a number of schemas, 0 or more.")
        report_path = Path(own["report_json"]) if own["report_json"] else None
        if report_path is not None and not report_path.parent.is_dir():
            raise UsageError(
                f"--report-json {report_path}: its directory does not exist. Nothing was "
                "read or changed."
            )
        return codename, shard, report_path

    def visit_all(self) -> bool:
        return bool(
            any(self.options.get(key) for key in VISIT_ALL)
            or self.options.get("app_label")
            or self.args
        )

    def tenant_schemas(self, public: str) -> list[str]:
        """The tenant schemas to migrate, in django-tenants' order (TENANT_MIGRATION_ORDER,
        else the tenants' primary keys); with ``--schema``, that one."""
        from django_tenants.utils import (
            get_tenant_migration_order,
            get_tenant_model,
            schema_exists,
        )

        if self.schema_name and self.schema_name != public:
            if not schema_exists(self.schema_name, self.options.get("database")):
                raise UsageError(
                    f"There is no schema {self.schema_name!r} in the database. Nothing was "
                    "read or changed."
                )
            return [self.schema_name]
        if self.schema_name:
            return []
        tenants = get_tenant_model().objects.exclude(schema_name=public)
        order = get_tenant_migration_order()
        tenants = tenants.order_by(*order) if order is not None else tenants.order_by("pk")
        return list(tenants.values_list("schema_name", flat=True))

    def show_status(
        self, schemas: Sequence[str], report_path: Path | None, shard: tuple[int, int] | None
    ) -> int:
        """Each schema's state and the fleet's summary; changes nothing (exit 0)."""
        rows, tally = self.write_states(schemas, shard)
        if report_path is not None:
            document = {
                "schema_version": 1,
                "database": self.options["database"],
                "shard": f"{shard[0]}/{shard[1]}" if shard else None,
                "summary": self.summary_line,
                "counts": tally,
                "schemas": [
                    {
                        "schema": schema,
                        "state": state,
                        "missing": missing,
                        "last_run": None
                        if run is None
                        else {
                            "outcome": run.outcome,
                            "exit_code": run.exit_code,
                            "finished_at": run.finished_at.isoformat() if run.finished_at else None,
                            "message": run.message or None,
                        },
                    }
                    for schema, state, missing, run in rows
                ],
            }
            report_path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
        return int(ExitCode.OK)

    def write_states(
        self, schemas: Sequence[str], shard: tuple[int, int] | None
    ) -> tuple[list[tuple[str, str, int, Any]], dict[str, int]]:
        """The fleet's summary and each schema's state (up-to-date ones from ``-v 2``),
        from one query across the fleet; the rows and the counts."""
        from django_safemigrate.plan import SharedDiskLoader
        from django_safemigrate.tenants import (
            expected_migrations,
            fleet_states,
            fleet_summary,
            state_counts,
        )

        connection = connections[self.options["database"]]
        expected = expected_migrations(SharedDiskLoader(None, ignore_no_migrations=True))
        states = fleet_states(connection, schemas, expected)
        rows = [(s.schema, s.state, s.missing, s.run) for s in states]
        tally = state_counts(states)
        self.summary_line = fleet_summary(states, self.options["database"], shard)
        self.stdout.write(self.summary_line)
        shown = [r for r in rows if r[1] != "up_to_date" or self.options["verbosity"] >= 2]
        limit = None if self.options["verbosity"] >= 2 else 50
        for schema, state, missing, run in shown[:limit]:
            line = f"  {schema}: {state.replace('_', ' ')}"
            if missing:
                line += f", {missing} migration(s) to apply"
            if run is not None and run.finished_at is not None:
                line += f"; last run ended {run.finished_at:%Y-%m-%d %H:%M:%S %Z} ({run.outcome})"
            if run is not None and state == run.outcome and run.message:
                line += f": {run.message.strip().splitlines()[0][:160]}"
            self.stdout.write(line)
        if limit is not None and len(shown) > limit:
            self.stdout.write(f"  ... and {len(shown) - limit} more (-v 2 lists them all)")
        return rows, tally

    # -- running schemas ---------------------------------------------------------------

    def fan_out(self, codename: str, schemas: Sequence[str], *, stop: bool) -> dict[str, Ran]:
        """Run ``schemas`` on ``codename``'s engine; with ``stop``, start none after one
        has not succeeded (those are not run: ``(None, None)``)."""
        if not schemas:
            return {}
        if codename == "multiprocessing":
            return self.run_pool(codename, schemas, stop)
        if codename == "subprocess":
            return self.run_children(schemas, stop)
        ran: dict[str, Ran] = {}
        for idx, schema in enumerate(schemas):
            if stop and any(code != ExitCode.OK for code, _ in ran.values()):
                ran[schema] = (None, None)
                continue
            ran[schema] = self.run_inline(codename, schema, idx, len(schemas))
        return ran

    def run_inline(self, codename: str, schema: str, idx: int | None, count: int | None) -> Ran:
        code, error = _run_schema(
            self.args, self.options, codename, schema, idx=idx, count=count, allow_atomic=True
        )
        if error:
            self.stderr.write(f"[{codename}:{schema}] {error}")
        return code, error

    def run_pool(self, codename: str, schemas: Sequence[str], stop: bool) -> dict[str, Ran]:
        """django-tenants' ``multiprocessing`` engine: a pool of forked workers of the size
        ``TENANT_MULTIPROCESSING_MAX_PROCESSES`` says."""
        from django.conf import settings

        processes = getattr(settings, "TENANT_MULTIPROCESSING_MAX_PROCESSES", 2)
        context = multiprocessing.get_context(
            "fork" if "fork" in multiprocessing.get_all_start_methods() else None
        )
        failed = context.Event()
        # No worker may share a session with this process or with another worker.
        close_parked_lock_sessions()
        for connection in connections.all():
            connection.close()
        # A process pool that notices a worker that died (killed, out of memory): its
        # schema, and those still queued, end as failed instead of waiting forever.
        ran: dict[str, Ran] = {}
        with ProcessPoolExecutor(
            processes, mp_context=context, initializer=_pool_started, initargs=(failed, stop)
        ) as pool:
            futures = {
                schema: pool.submit(
                    _run_in_worker, (self.args, self.options, codename, len(schemas), (idx, schema))
                )
                for idx, schema in enumerate(schemas)
            }
            for schema, future in futures.items():
                try:
                    ran[schema] = future.result()
                except BrokenProcessPool:
                    ran[schema] = (
                        int(ExitCode.FAILED),
                        "a worker process of the pool died (killed, or out of memory) while "
                        "this schema's run was running or waiting; its lock went with its "
                        "session, and the next run resumes it",
                    )
        return ran

    def run_children(self, schemas: Sequence[str], stop: bool) -> dict[str, Ran]:
        """django-tenants' ``subprocess`` engine: ``manage.py migrate_schemas --schema S``
        per schema, ``--parallel`` (or ``TENANT_SUBPROCESS_PARALLEL``) at a time."""
        from django.conf import settings
        from django_tenants.migration_executors.subproc import _manage_py, _options_to_argv

        parallel = self.options.get("parallel") or getattr(
            settings, "TENANT_SUBPROCESS_PARALLEL", 1
        )
        base = [sys.executable, _manage_py(), "migrate_schemas", "--executor=standard"]
        argv = [*map(str, self.args), *_options_to_argv(self.options)]
        failed = threading.Event()
        for connection in connections.all():
            connection.close()

        def run(schema: str) -> Ran:
            if stop and failed.is_set():
                return None, None
            code = subprocess.run([*base, "--schema", schema, *argv], check=False).returncode
            if code != ExitCode.OK:
                failed.set()
            return code, None

        with ThreadPoolExecutor(max_workers=max(1, int(parallel))) as pool:
            return dict(zip(schemas, pool.map(run, schemas), strict=True))

    # -- results -----------------------------------------------------------------------

    def result(self, schema: str, ran: Ran) -> DatabaseResult:
        code, error = ran
        if code is None:
            return DatabaseResult(schema, DatabaseOutcome.NOT_RUN)
        self._pending_ledger.append(schema)
        if code == ExitCode.OK:
            return DatabaseResult(schema, DatabaseOutcome.NOTHING_TO_DO, code, error=error)
        return DatabaseResult(schema, outcome_of(None, code), code, error=error)

    _pending_ledger: list[str]

    def execute(self, *args: Any, **options: Any) -> Any:
        self._pending_ledger = []
        self._since = timezone.now()
        return super().execute(*args, **options)

    def finish(
        self,
        results: list[DatabaseResult],
        report_path: Path | None,
        shard: tuple[int, int] | None,
    ) -> int:
        """Fill in each run schema's outcome from the ledger; summary, report, exit code."""
        self.with_ledger_outcomes(results)
        from django_safemigrate.execution.fleet import summary

        self.summary_line = (
            summary(results).replace(" databases:", " schemas:").replace(" database:", " schema:")
        )
        code = int(overall_exit_code(results))
        if report_path is not None:
            document = {
                "schema_version": 1,
                "exit_code": code,
                "summary": self.summary_line,
                "database": self.options["database"],
                "shard": f"{shard[0]}/{shard[1]}" if shard else None,
                "schemas": [
                    {
                        "schema": r.alias,
                        "outcome": r.outcome.value,
                        "exit_code": r.exit_code,
                        "error": r.error,
                    }
                    for r in results
                ],
            }
            report_path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
        if code == ExitCode.OK and self.options["verbosity"] >= 1:
            self.stdout.write(self.summary_line)
        return code

    def with_ledger_outcomes(self, results: list[DatabaseResult]) -> None:
        """Each schema that ran gets the outcome its ledger run ended with (``applied``,
        ``nothing_to_do``, ``blocked``...) and, failing, the ledger's message."""
        if not self._pending_ledger:
            return
        from django_safemigrate.tenants import last_runs

        try:
            runs = last_runs(
                connections[self.options["database"]], self._pending_ledger, self._since
            )
        except DatabaseError:
            return  # no ledger (yet): the exit codes say enough
        for result in results:
            run = runs.get(result.alias)
            if run is None or result.exit_code is None:
                continue
            if result.exit_code == ExitCode.OK and run.outcome in _SUCCEEDED:
                result.outcome = DatabaseOutcome(run.outcome)
            elif result.exit_code != ExitCode.OK and run.outcome in _ENDED:
                result.outcome = DatabaseOutcome(run.outcome)
                result.error = result.error or run.message or None


_SUCCEEDED = {
    o.value
    for o in (
        DatabaseOutcome.APPLIED,
        DatabaseOutcome.UNAPPLIED,
        DatabaseOutcome.NOTHING_TO_DO,
        DatabaseOutcome.PLANNED,
    )
}
_ENDED = {o.value for o in DatabaseOutcome} - {"running"}

_FAILED: Any = None
_STOP = False


def _pool_started(failed: Any, stop: bool) -> None:
    global _FAILED, _STOP  # the worker's own copy, set once per worker
    _FAILED, _STOP = failed, stop
    # A worker outlives a parent that was killed (SIGKILL, out of memory), waiting for
    # work that never comes with a database session open: it ends within a second.
    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="safemigrate-parent-watch", daemon=True).start()


def _run_in_worker(job: tuple[Any, dict[str, Any], str, int, tuple[int, str]]) -> Ran:
    args, options, codename, count, (idx, schema) = job
    if _STOP and _FAILED is not None and _FAILED.is_set():
        return None, None
    code, error = _run_schema(
        args, options, codename, schema, idx=idx, count=count, allow_atomic=False
    )
    if error:
        sys.stderr.write(f"[{codename}:{schema}] {error}\n")
    if code != ExitCode.OK and _FAILED is not None:
        _FAILED.set()
    return code, error


def _run_schema(
    args: Sequence[Any],
    options: dict[str, Any],
    codename: str,
    schema: str,
    *,
    idx: int | None,
    count: int | None,
    allow_atomic: bool,
) -> Ran:
    """django-tenants' run of one schema; its exit code and error instead of raising."""
    from django_tenants.migration_executors.base import run_migrations

    connection = connections[options.get("database") or "default"]
    try:
        run_migrations(
            args, options, codename, schema, allow_atomic=allow_atomic, idx=idx, count=count
        )
    except CommandError as exc:
        return int(exc.returncode), str(exc)
    except SystemExit as exc:
        return int(exc.code or 0) if isinstance(exc.code, int) else 1, None
    except Exception as exc:  # one schema's crash must not stop the fleet
        return int(ExitCode.FAILED), f"{type(exc).__name__}: {exc}"
    finally:
        _back_to_public(connection)
    return int(ExitCode.OK), None


def _back_to_public(connection: Any) -> None:
    """After a schema's run, ended or not: the connection closed (unless a caller's
    transaction holds it) and set back to the public schema."""
    try:
        if not connection.in_atomic_block:
            connection.close()
    finally:
        connection.set_schema_to_public()
