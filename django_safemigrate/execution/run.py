"""One governed run: connect, take the lock, keep the ledger, release.

Both ``migrate`` and ``safemigrate`` go through :func:`governed_run`; what
happens inside the lock (plan, checks, apply) is the command's business.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import socket
from collections.abc import Callable, Iterator

from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.utils.connection import ConnectionDoesNotExist

from django_safemigrate.conf import SafemigrateSettings
from django_safemigrate.enums import ExitCode, MigrationOutcome, RunOutcome
from django_safemigrate.exceptions import (
    DatabaseUnavailable,
    LockLost,
    LockTimeout,
    SafemigrateError,
    UsageError,
)
from django_safemigrate.execution.ledger import Ledger
from django_safemigrate.execution.lock import (
    Holder,
    client_backend_pid,
    migration_lock,
    runner_application,
)
from django_safemigrate.execution.recorded import applied_snapshot


@dataclasses.dataclass(frozen=True)
class RunRequest:
    """What a command asks of a governed run."""

    database: str
    command: str
    argv: str
    lock_wait: float
    lock_database: str | None
    #: What the run does without governance, and why (recorded on its ledger row).
    ungoverned: tuple[str, ...] = ()
    #: ``--accept-ledger-loss``: why a ledger that lost records may be adopted again.
    accept_ledger_loss: str | None = None


def describe_database(connection: BaseDatabaseWrapper) -> str:
    s = connection.settings_dict
    host = s.get("HOST") or "local socket"
    port = f":{s['PORT']}" if s.get("PORT") else ""
    return f"'{connection.alias}' ({s.get('USER') or 'default user'}@{host}{port}/{s.get('NAME')})"


def postgres_connection(alias: str) -> BaseDatabaseWrapper:
    """``connections[alias]``, or :class:`UsageError` unless it is a PostgreSQL database.

    Everything this app does to a database (the advisory lock, the catalogs it reads, the
    SQL it judges) is PostgreSQL's; a backend that says it is PostgreSQL (Django's, PostGIS,
    django-pg-zero-downtime-migrations) is accepted.
    """
    try:
        connection = connections[alias]
    except ConnectionDoesNotExist:
        known = ", ".join(repr(name) for name in connections) or "none"
        raise UsageError(
            f"There is no database {alias!r} in DATABASES (it has {known}). Nothing was read "
            "or changed."
        ) from None
    except ImproperlyConfigured as exc:
        raise UsageError(
            f"Database {alias!r} cannot be used: {exc} Nothing was read or changed."
        ) from None
    if connection.vendor != "postgresql":
        engine = connection.settings_dict.get("ENGINE")
        what = (
            f"its ENGINE is {engine!r} ({connection.vendor})"
            if engine and engine != "django.db.backends.dummy"
            else "it has no ENGINE (DATABASES is empty or incomplete)"
        )
        raise UsageError(
            f"Database {alias!r} is not a PostgreSQL database: {what}. django_safemigrate "
            "works with PostgreSQL only; point --database (or DATABASES, or DATABASE_URL "
            "where the settings read it) at one. Nothing was read or changed."
        )
    return connection


def connect(connection: BaseDatabaseWrapper) -> None:
    """Open ``connection`` or raise :class:`DatabaseUnavailable` with a useful message."""
    try:
        connection.ensure_connection()
    except DatabaseError as exc:
        from django_safemigrate.execution.fleet import TRANSIENT_PREFIX

        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        where = (
            "the settings SAFEMIGRATE['DATABASES_CALLABLE'] returned for it"
            if connection.alias.startswith(TRANSIENT_PREFIX)
            else "DATABASES (or DATABASE_URL)"
        )
        raise DatabaseUnavailable(
            f"Cannot connect to database {describe_database(connection)}: {first_line}. "
            f"Check that the server is running and reachable, and the credentials in {where}. "
            "Nothing was applied."
        ) from exc


@contextlib.contextmanager
def governed_run(
    request: RunRequest,
    settings: SafemigrateSettings,
    on_wait: Callable[[Holder | None, float, float, bool], None],
    on_notice: Callable[[str], None] = lambda message: None,
    sender: type = object,
) -> Iterator[Ledger]:
    """Hold the migration lock and an open ledger run while the block runs.

    The outcome written to the ledger follows what the block did: the migrations
    it recorded, or the exception it raised (which is re-raised unchanged). The run's
    events (:mod:`.events`) go from ``run.start`` to ``run.end``; ``sender`` is the
    ``lock_wait_alert`` signal's sender (the command's class).
    """
    connection = postgres_connection(request.database)
    lock_alias = request.lock_database or settings.lock_database or request.database
    lock_via = postgres_connection(lock_alias)
    connect(connection)
    if lock_via is not connection:
        connect(lock_via)
    ledger = Ledger(connection, command=request.command, argv=request.argv)
    ledger.ungoverned = list(request.ungoverned)
    ledger.accept_loss = request.accept_ledger_loss
    events = ledger.events
    events.run_start(argv=request.argv, lock_wait=request.lock_wait)
    watch = events.lock_watch(settings.lock_wait_alert, sender)
    with _run_end(ledger):
        in_body = False
        try:
            with (
                migration_lock(
                    target=connection,
                    lock_via=lock_via,
                    command=request.argv,
                    wait=request.lock_wait,
                    poll_interval=settings.lock_poll_interval,
                    on_wait=lambda holder, waited, first: on_wait(
                        holder, waited, request.lock_wait, first
                    ),
                    on_poll=watch,
                ) as lock,
                applied_snapshot(connection),
            ):
                # Under the lock only this run records migrations in the schema: the
                # applied migrations are read once until it writes (.recorded).
                events.lock_taken(watch.waited(), lock.backend_pid)
                ledger.lock_acquired()
                ledger.check_lock = lock.verify_held
                ledger.schema = lock.schema
                ended = claim_runner_session(connection, lock.key)
                if ended:
                    on_notice(
                        f"Ended {len(ended)} database session(s) left by a runner that died "
                        f"holding the lock (backend pid {', '.join(map(str, ended))})."
                    )
                if ledger.writable():
                    ledger.open_run()
                    ledger.mark_interrupted_runs()
                in_body = True
                try:
                    yield ledger
                except LockLost as exc:
                    raise _lock_lost(ledger, request, exc) from None
                except BaseException as exc:
                    _finish_failed(ledger, exc)
                    raise
                finally:
                    ledger.check_lock = _not_held
                    release_runner_session(connection)
                ledger.finish(_outcome(ledger.counts), ExitCode.OK)
        except LockTimeout as exc:
            ledger.finish(RunOutcome.LOCK_TIMEOUT, exc.exit_code, str(exc))
            raise
        except DatabaseError as exc:
            # The lock connection itself failed (server gone, connection terminated).
            if not in_body:
                raise DatabaseUnavailable(
                    f"Lost the connection to database {describe_database(connection)} while taking "
                    f"the migration lock: {str(exc).strip()}. Nothing was applied."
                ) from exc
            raise


def claim_runner_session(connection: BaseDatabaseWrapper, key: int) -> list[int]:
    """Mark our migration session and end the ones a dead runner left behind.

    Only the lock holder applies migrations, so once we hold the lock any other
    session marked as a runner *of the same lock key* belongs to a runner that
    died (SIGKILL, OOM, a lost node) while its statement kept running on the
    server: a concurrent index build still going, or a transaction still holding
    its locks. Left alone, it would make this run's statements wait or collide
    with it. Runners of other keys (another schema of the same database, in a
    schema-per-tenant setup) hold their own lock and are left alone. The mark is
    set only after the lock is taken, so waiters are never ended.

    Behind a connection pooler (the session that answers is not the one the
    connection was given) nothing is set or ended: the mark would stay on a pooled
    server session that the application then uses, and a later runner would end
    it. A dead runner's statement is then not ended early.
    """
    announced = client_backend_pid(connection) or 0
    with connection.cursor() as cursor:
        # One round trip: the mark, and the sessions ended (our own is never one of
        # them). pg_terminate_backend stays in the select list, which PostgreSQL only
        # evaluates for rows that passed the whole WHERE clause.
        cursor.execute(
            """
            SELECT CASE WHEN pg_backend_pid() = %s
                        THEN set_config('application_name', %s, false) END,
              ARRAY(
                SELECT CASE WHEN pg_terminate_backend(pid) THEN pid END
                FROM pg_stat_activity
                WHERE pg_backend_pid() = %s
                  AND datname = current_database() AND pid <> pg_backend_pid()
                  AND starts_with(application_name, %s)
            )
            """,
            [
                announced,
                f"{runner_application(key)}{socket.gethostname()}:{os.getpid()}"[:63],
                announced,
                runner_application(key),
            ],
        )
        row = cursor.fetchone()
        return [int(pid) for pid in row[1] if pid is not None] if row else []


def release_runner_session(connection: BaseDatabaseWrapper) -> None:
    """Drop the runner mark before the lock goes, so the next holder leaves us alone.

    Only on a session of our own: behind a pooler nothing was set, and this
    statement would reset another client's session.
    """
    with contextlib.suppress(DatabaseError):
        if connection.connection is not None and not connection.in_atomic_block:
            with connection.cursor() as cursor:
                # Also the session timeouts the step runner may have set.
                cursor.execute(
                    "SELECT set_config(name, reset_val, false) FROM pg_settings "
                    "WHERE pg_backend_pid() = %s "
                    "AND name IN ('application_name', 'lock_timeout', 'statement_timeout')",
                    [client_backend_pid(connection) or 0],
                )


def _outcome(counts: dict[MigrationOutcome, int]) -> RunOutcome:
    """A finished run: ``unapplied`` when it only went backwards (a rollback)."""
    forwards = counts.get(MigrationOutcome.APPLIED, 0) + counts.get(MigrationOutcome.FAKED, 0)
    if forwards:
        return RunOutcome.APPLIED
    if counts.get(MigrationOutcome.UNAPPLIED, 0):
        return RunOutcome.UNAPPLIED
    return RunOutcome.NOTHING_TO_DO


def _not_held(where: str) -> None:
    """``Ledger.check_lock`` outside the held lock: nothing to check."""


def _finished_before_loss(ledger: Ledger) -> str:
    """What this run finished, from the ledger: the last migration and step it recorded."""
    from django_safemigrate.models import MigrationRecord, StepRecord

    done = sum(
        ledger.counts.get(o, 0)
        for o in (MigrationOutcome.APPLIED, MigrationOutcome.FAKED, MigrationOutcome.UNAPPLIED)
    )
    summary = f"This run finished {done} migration(s)"
    if ledger.run_id is None or not ledger.writable():
        return summary + "."
    try:
        ledger.reconnect_if_broken()
        alias = ledger.connection.alias
        record = (
            MigrationRecord.objects.using(alias)
            .filter(
                run_id=ledger.run_id,
                outcome__in=[
                    MigrationOutcome.APPLIED,
                    MigrationOutcome.FAKED,
                    MigrationOutcome.UNAPPLIED,
                ],
            )
            .order_by("-id")
            .values_list("app_label", "name", "outcome")
            .first()
        )
        step = (
            StepRecord.objects.using(alias)
            .filter(run_id=ledger.run_id)
            .order_by("-id")
            .values_list("app_label", "name", "step_index", "step_count")
            .first()
        )
    except DatabaseError:
        return summary + "."
    if record is not None:
        summary += f", the last {record[0]}.{record[1]} ({record[2]})"
    if step is not None and step[2] + 1 < step[3]:
        summary += f", and step {step[2] + 1}/{step[3]} of {step[0]}.{step[1]}"
    return summary + "."


@contextlib.contextmanager
def _run_end(ledger: Ledger) -> Iterator[None]:
    """``run.end`` (and ``run.failed`` or ``run.blocked`` before it) when the run ends."""
    try:
        yield
    except BaseException as exc:
        ledger.events.run_end(*_failure(exc))
        raise
    ledger.events.run_end(_outcome(ledger.counts), ExitCode.OK)


def _lock_lost(ledger: Ledger, request: RunRequest, exc: LockLost) -> LockLost:
    """The loss in one paragraph: where it was noticed, then what this run finished,
    which only the ledger knows; logged, and written to the ledger."""
    resume = " (finished steps are not repeated)" if request.command != "migrate" else ""
    lost = LockLost(
        f"{exc} {_finished_before_loss(ledger)} Nothing runs after the loss: "
        f"run {request.command} again to apply the rest{resume}."
    )
    ledger.events.lock_lost(str(lost))
    _finish_failed(ledger, lost)
    return lost


def _finish_failed(ledger: Ledger, exc: BaseException) -> None:
    ledger.finish(*_failure(exc), after_error=True)


def _failure(exc: BaseException) -> tuple[RunOutcome, int, str]:
    """The outcome, exit code and message of a run that ``exc`` ended."""
    if isinstance(exc, LockLost):
        return RunOutcome.INTERRUPTED, exc.exit_code, str(exc)
    if isinstance(exc, SafemigrateError):
        outcome = {
            ExitCode.BLOCKED: RunOutcome.BLOCKED,
            ExitCode.LOCK_TIMEOUT: RunOutcome.LOCK_TIMEOUT,
        }.get(exc.exit_code, RunOutcome.FAILED)
        return outcome, exc.exit_code, str(exc)
    if isinstance(exc, KeyboardInterrupt | SystemExit):
        code = exc.code if isinstance(exc, SystemExit) and isinstance(exc.code, int) else 130
        outcome = (
            RunOutcome.INTERRUPTED
            if isinstance(exc, KeyboardInterrupt)
            else (RunOutcome.NOTHING_TO_DO if code == 0 else RunOutcome.FAILED)
        )
        return outcome, code, type(exc).__name__
    return RunOutcome.FAILED, ExitCode.FAILED, f"{type(exc).__name__}: {exc}"
