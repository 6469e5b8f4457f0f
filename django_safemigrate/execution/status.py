"""``safemigrate --status``: who holds the migration lock, what runs now, the last runs.

Strictly read-only. Everything is read in one ``READ ONLY`` transaction on the
command's own connection: the lock's holder from ``pg_locks`` and
``pg_stat_activity`` (the lock is never taken, so the status works while a deploy
holds it), the runs and step records from the ledger, the applied migrations from
``django_migrations``. A short ``lock_timeout`` keeps it from queueing behind a
migration that holds a strong lock on a table it reads; nothing is written, and the
connection is closed afterwards.

Which step runs now is what the ledger and the plan tell: the ledger records a step
when it finishes, so a migration split into steps whose earlier steps are recorded
in the running run runs its next step; otherwise the running run works on the first
migration of the plan that is not applied yet (Django's ``django_migrations`` row
commits with the migration). The runner's own database session (its
``application_name`` names the lock key) shows its state and current statement.
"""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any

from django.db import DatabaseError, transaction
from django.db.backends.base.base import BaseDatabaseWrapper

from django_safemigrate.enums import RunOutcome
from django_safemigrate.exceptions import DatabaseUnavailable, UsageError
from django_safemigrate.execution.ledger import APP_LABEL
from django_safemigrate.execution.lock import (
    HOLDER_SQL,
    Holder,
    holder_from_row,
    holder_params,
    lock_key,
    runner_application,
)
from django_safemigrate.execution.run import describe_database

#: The version of ``--status --format json``: keys may be added, never renamed or removed.
SCHEMA_VERSION = 1
#: How long a read may wait for a table lock before the status gives up (milliseconds).
LOCK_TIMEOUT_MS = 5000


class StatusUnavailable(UsageError):
    """The status cannot be read: the ledger tables are missing, or a read failed."""


def _iso(value: datetime.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


@dataclasses.dataclass(frozen=True)
class Status:
    """What ``--status`` reports; :meth:`as_json` is its documented JSON."""

    database: dict[str, Any]
    holder: Holder | None
    holder_run: int | None
    current: dict[str, Any] | None
    runs: list[dict[str, Any]]

    def as_json(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "database": self.database,
            "lock": {
                "held": self.holder is not None,
                "holder": self.holder.as_dict() if self.holder is not None else None,
                "run_id": self.holder_run,
            },
            "current": self.current,
            "runs": self.runs,
        }

    def as_text(self) -> list[str]:
        db = self.database
        lines = []
        where = f"database '{db['name']}', schema '{db['schema']}'"
        if self.holder is None:
            lines.append(f"Migration lock ({where}): free.")
        else:
            tied = f"; ledger run {self.holder_run}" if self.holder_run is not None else ""
            name = self.holder.application_name
            named = f", application_name {name!r}" if name else ""
            lines.append(
                f"Migration lock ({where}): held by {self.holder.describe()}{named}{tied}."
            )
        current = self.current
        if current is None:
            lines.append("Running now: no run in progress.")
        else:
            step = ""
            if current["step"] is not None:
                step = f" step {current['step']}/{current['step_count']} of"
            what = f"{step} {current['migration']}" if current["migration"] else " (unknown)"
            lines.append(
                f"Running now: ledger run {current['run_id']} ({current['command']} on host "
                f"{current['host']}, pid {current['pid']}, started {current['started_at']}):"
                f"{what}."
            )
            for done in current["finished_steps"]:
                lines.append(
                    f"  finished: step {done['step']}/{done['step_count']} of "
                    f"{done['migration']} at {done['finished_at']}"
                )
            session = current["session"]
            if session is not None:
                lines.append(
                    f"  runner session (backend pid {session['backend_pid']}): {session['state']}"
                    f"{', waiting on ' + session['wait_event'] if session['wait_event'] else ''}"
                    f", since {session['state_change']}: {session['query']}"
                )
        lines.append(f"Last {len(self.runs)} run(s):" if self.runs else "No runs recorded yet.")
        for run in self.runs:
            took = f"{run['duration']:.1f}s" if run["duration"] is not None else "-"
            lines.append(
                f"  run {run['id']}: {run['outcome']} (exit {run['exit_code']}), "
                f"{run['command']} by {run['user']} on {run['host']} (pid {run['pid']}), "
                f"started {run['started_at']}, took {took}"
            )
        return lines


def read_status(connection: BaseDatabaseWrapper, runs: int) -> Status:
    """The status of ``connection``'s database, read in one read-only transaction.

    Raises :class:`DatabaseUnavailable` when the database cannot be reached and
    :class:`StatusUnavailable` when the ledger tables do not exist yet.
    """
    try:
        connection.ensure_connection()
    except DatabaseError as exc:
        text = str(exc).strip()
        raise DatabaseUnavailable(
            f"Cannot read the migration status: cannot connect to database "
            f"{describe_database(connection)}: {text.splitlines()[0] if text else exc!r}. "
            "Check that the server is running and reachable, and the credentials in "
            "DATABASES (or DATABASE_URL). Nothing was read or changed."
        ) from exc
    try:
        with transaction.atomic(using=connection.alias):
            with connection.cursor() as cursor:
                # First statement of the transaction: every later one is read-only.
                cursor.execute("SET TRANSACTION READ ONLY")
                cursor.execute(f"SET LOCAL lock_timeout = {LOCK_TIMEOUT_MS}")
            return _read(connection, runs)
    except DatabaseError as exc:
        text = str(exc).strip()
        raise StatusUnavailable(
            f"Cannot read the migration status of database {describe_database(connection)}: "
            f"{text.splitlines()[0] if text else exc!r}. A migration may hold a strong lock on "
            "a ledger table; try again in a moment. Nothing was changed."
        ) from exc
    finally:
        connection.close()


def _read(connection: BaseDatabaseWrapper, limit: int) -> Status:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT current_database(), current_schema(), to_regclass(%s) IS NOT NULL, "
            "to_regclass(%s) IS NOT NULL, EXISTS (SELECT FROM pg_attribute WHERE "
            "attrelid = to_regclass(%s) AND attname = 'schema' AND NOT attisdropped)",
            [f"{APP_LABEL}_run", f"{APP_LABEL}_steprecord", f"{APP_LABEL}_run"],
        )
        name, schema, has_runs, has_steps, scoped = cursor.fetchone()
        schema = schema or "public"
        if not (has_runs and has_steps):
            raise StatusUnavailable(
                f"The migration ledger does not exist yet in database "
                f"{describe_database(connection)} (no table {APP_LABEL}_run): no run of "
                "safemigrate or migrate has created it, so there is no history to show. Run "
                "'manage.py safemigrate' once (it creates the ledger tables first), then ask "
                "again. Nothing was read or changed."
            )
        key = lock_key(name, schema)
        cursor.execute(HOLDER_SQL, holder_params(key))
        row = cursor.fetchone()
        holder = holder_from_row(row) if row else None
        # This schema's runs (tenants of one database share the ledger's tables); all of
        # them on a ledger whose migrations are not all applied yet (no schema column).
        only = schema if scoped else None
        runs = _runs(cursor, connection, limit, only)
        running = _running(cursor, connection, only)
        holder_run = _holder_run(holder, running)
        current = None
        chosen = next((r for r in running if r["id"] == holder_run), None)
        if chosen is None and holder is not None and running:
            chosen = running[0]
        if chosen is not None:
            current = _current(cursor, connection, chosen, key)
    return Status(
        database={"alias": connection.alias, "name": name, "schema": schema},
        holder=holder,
        holder_run=holder_run,
        current=current,
        runs=runs,
    )


_RUN_COLUMNS = (
    'id, command, argv, host, pid, "user", started_at, lock_acquired_at, finished_at, '
    "outcome, exit_code, message"
)


def _run_dict(row: tuple[Any, ...]) -> dict[str, Any]:
    (id_, command, argv, host, pid, user, started, acquired, finished, outcome, code, msg) = row
    duration = (finished - started).total_seconds() if finished and started else None
    text = (msg or "").strip()
    return {
        "id": id_,
        "command": command,
        "argv": argv,
        "host": host,
        "pid": pid,
        "user": user,
        "started_at": _iso(started),
        "lock_acquired_at": _iso(acquired),
        "finished_at": _iso(finished),
        "duration": duration,
        "outcome": outcome,
        "exit_code": code,
        "message": text.splitlines()[0] if text else "",
    }


def _runs(
    cursor: Any, connection: BaseDatabaseWrapper, limit: int, schema: str | None
) -> list[dict[str, Any]]:
    table = connection.ops.quote_name(f"{APP_LABEL}_run")
    cursor.execute(
        f"SELECT {_RUN_COLUMNS} FROM {table} WHERE %s::text IS NULL OR schema = %s "
        "ORDER BY started_at DESC, id DESC LIMIT %s",
        [schema, schema, limit],
    )
    return [_run_dict(row) for row in cursor.fetchall()]


def _running(
    cursor: Any, connection: BaseDatabaseWrapper, schema: str | None
) -> list[dict[str, Any]]:
    """Runs still marked running that took the lock, newest first (a run that died keeps
    the mark until the next run takes the lock)."""
    table = connection.ops.quote_name(f"{APP_LABEL}_run")
    cursor.execute(
        f"SELECT {_RUN_COLUMNS} FROM {table} WHERE outcome = %s "
        "AND lock_acquired_at IS NOT NULL AND (%s::text IS NULL OR schema = %s) "
        "ORDER BY started_at DESC, id DESC",
        [RunOutcome.RUNNING.value, schema, schema],
    )
    return [_run_dict(row) for row in cursor.fetchall()]


def _holder_run(holder: Holder | None, running: list[dict[str, Any]]) -> int | None:
    """The running run whose host and pid the holder's session names."""
    if holder is None or holder.runner_pid is None:
        return None
    for run in running:
        if run["pid"] == holder.runner_pid and (holder.host is None or run["host"] == holder.host):
            return int(run["id"])
    return None


def _current(
    cursor: Any, connection: BaseDatabaseWrapper, run: dict[str, Any], key: int
) -> dict[str, Any]:
    table = connection.ops.quote_name(f"{APP_LABEL}_steprecord")
    cursor.execute(
        f"SELECT app_label, name, step_index, step_count, finished_at FROM {table} "
        "WHERE run_id = %s ORDER BY id",
        [run["id"]],
    )
    steps = [
        {
            "migration": f"{app}.{name}",
            "step": index + 1,
            "step_count": count,
            "finished_at": _iso(finished),
        }
        for app, name, index, count, finished in cursor.fetchall()
    ]
    migration, step, step_count = None, None, None
    last = steps[-1] if steps else None
    if (
        last is not None
        and last["step"] < last["step_count"]
        and not _applied(cursor, *last["migration"].split(".", 1))
    ):
        migration, step, step_count = last["migration"], last["step"] + 1, last["step_count"]
    else:
        migration = _next_unapplied(connection)
    cursor.execute(
        "SELECT pid, state, wait_event_type, wait_event, state_change, query FROM "
        "pg_stat_activity WHERE datname = current_database() AND starts_with(application_name, %s) "
        "ORDER BY backend_start DESC LIMIT 1",
        [runner_application(key)],
    )
    row = cursor.fetchone()
    session = None
    if row is not None:
        pid, state, wait_type, wait_event, changed, query = row
        session = {
            "backend_pid": pid,
            "state": state,
            "wait_event": f"{wait_type}:{wait_event}" if wait_event else None,
            "state_change": _iso(changed),
            "query": (query or "")[:1000],
        }
    return {
        "run_id": run["id"],
        "command": run["command"],
        "host": run["host"],
        "pid": run["pid"],
        "started_at": run["started_at"],
        "migration": migration,
        "step": step,
        "step_count": step_count,
        "finished_steps": [s for s in steps if s["migration"] == migration] if step else [],
        "session": session,
    }


def _applied(cursor: Any, app_label: str, name: str) -> bool:
    cursor.execute(
        "SELECT 1 FROM django_migrations WHERE app = %s AND name = %s", [app_label, name]
    )
    return cursor.fetchone() is not None


def _next_unapplied(connection: BaseDatabaseWrapper) -> str | None:
    """The first migration of the whole plan that is not applied yet (files and
    ``django_migrations``, read only)."""
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    for migration, backwards in plan:
        if not backwards:
            return f"{migration.app_label}.{migration.name}"
    return None
