"""The database-wide migration lock.

PostgreSQL: a *session* advisory lock, held on a connection of its own that
never opens a transaction. If the runner dies, its session ends and PostgreSQL
releases the lock, so a crash can never leave it stale.

Waiters poll ``pg_try_advisory_lock`` with a sleep instead of blocking in
``pg_advisory_lock``: a blocked statement holds a snapshot for as long as it
waits, and the holder's ``CREATE INDEX CONCURRENTLY`` waits for every older
snapshot to go away, so a blocking waiter would deadlock the deploy
(https://www.postgresql.org/docs/current/sql-createindex.html#SQL-CREATEINDEX-CONCURRENTLY).

Who holds the lock is visible to everyone: the holder's statements carry a
comment with its host, pid, command and start time, which waiters read from
``pg_stat_activity.query`` of the session that ``pg_locks`` names.

A session lock serialises nothing through a pooler that hands each transaction
to whichever server session is free (PgBouncer in transaction mode): the lock
stays on one server session, the next statement runs on another. The lock
connection is therefore checked for a pooler before anything is set or locked
on it (:func:`pooled`), and refused when one is there.

The holder checks that it still holds the lock before every migration and step
and before each step's COMMIT (:meth:`MigrationLock.verify_held`, one round trip);
losing it (terminated backend, server restart) stops the run (:class:`LockLost`).

No heartbeat runs while a long step keeps the lock connection idle: TCP keepalives
(both ends) keep a firewall's flow open and notice a dead peer, a TCP user timeout
bounds a statement sent into a cut connection, and ``idle_session_timeout`` is off
for the lock session (:meth:`MigrationLock.prepare_session`), and each check waits
for its answer at most :data:`CHECK_TIMEOUT` seconds. A loss during a step is noticed
by the next check, before the step's COMMIT or before the next step, which is where
it matters; a runner that takes the lock meanwhile ends the statements this one still
runs (the runner sessions of its key).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import hashlib
import json
import os
import select
import socket
import sys
import time
import typing
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
from django.db import DatabaseError
from django.db.backends.base.base import BaseDatabaseWrapper

from django_safemigrate.exceptions import LockLost, LockTimeout, UsageError

#: How often a waiting runner says again that it is still waiting.
REPORT_EVERY = 15.0
_COMMENT_TAG = "django_safemigrate lock holder "


@dataclasses.dataclass(frozen=True)
class Holder:
    """Who holds the lock, as far as ``pg_stat_activity`` lets us see."""

    pid: int
    host: str | None = None
    runner_pid: int | None = None
    command: str | None = None
    since: datetime.datetime | None = None
    client_addr: str | None = None
    #: The lock session's ``application_name`` (``django_safemigrate lock <key> host:pid``).
    application_name: str | None = None
    #: What the holder's runner session runs now (or ran last), where it is visible.
    query: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The holder for events and ``--status``: JSON-ready, keys always present."""
        return {
            "backend_pid": self.pid,
            "pid": self.runner_pid,
            "host": self.host,
            "application_name": self.application_name,
            "client_addr": self.client_addr,
            "command": self.command,
            "since": self.since.isoformat() if self.since else None,
            "query": self.query,
        }

    def describe(self) -> str:
        parts = []
        if self.host:
            parts.append(f"host {self.host}")
        if self.runner_pid:
            parts.append(f"pid {self.runner_pid}")
        if self.command:
            parts.append(f"running '{self.command}'")
        if self.since:
            age = datetime.datetime.now(datetime.UTC) - self.since
            parts.append(f"since {self.since:%Y-%m-%d %H:%M:%S} UTC ({_seconds(age)} ago)")
        if not parts:
            parts.append("a session whose details this database user may not see")
        parts.append(f"database backend pid {self.pid}")
        return ", ".join(parts)


def _seconds(delta: datetime.timedelta) -> str:
    return f"{int(delta.total_seconds())}s"


def lock_key(database: str, schema: str) -> int:
    """A signed 64-bit advisory-lock key for one database and schema.

    Advisory locks are already scoped to one database by PostgreSQL; the schema
    keeps tenants that share a database in separate schemas from serialising
    each other, and the name makes the key readable in the code that derives it.
    """
    digest = hashlib.sha256(f"django_safemigrate:{database}:{schema}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def key_tag(key: int) -> str:
    """``key`` as 16 hex digits, for ``application_name`` (sessions of one lock key)."""
    return f"{key & 0xFFFFFFFFFFFFFFFF:016x}"


#: ``application_name`` of the session that applies migrations while holding the lock,
#: followed by the lock key's tag (:func:`key_tag`) and the runner's host and pid.
RUNNER_APPLICATION = "django_safemigrate runner"


def runner_application(key: int) -> str:
    """The ``application_name`` prefix of runner sessions of lock ``key`` (with a space)."""
    return f"{RUNNER_APPLICATION} {key_tag(key)} "


def client_backend_pid(wrapper: BaseDatabaseWrapper) -> int | None:
    """The backend pid the server announced to this client at connection start.

    PostgreSQL sends it in the BackendKeyData message (used to cancel queries).
    A pooler such as PgBouncer answers the startup itself, in session and in
    transaction mode alike, and sends a key of its own, so this differs from
    ``pg_backend_pid()`` behind it. ``None`` when the driver does not say.
    """
    raw = wrapper.connection
    info = getattr(raw, "info", None)
    pid = getattr(info, "backend_pid", None)
    return int(pid) if isinstance(pid, int) and pid else None


def pooled(wrapper: BaseDatabaseWrapper, server_pid: int) -> bool:
    """Whether a pooler stands between ``wrapper`` and the server session that answered."""
    announced = client_backend_pid(wrapper)
    return announced is not None and announced != server_pid


@dataclasses.dataclass(frozen=True)
class HolderInfo:
    """What the holder writes about itself into its statements."""

    host: str
    pid: int
    command: str
    since: datetime.datetime

    @classmethod
    def current(cls, command: str) -> HolderInfo:
        return cls(
            host=socket.gethostname(),
            pid=os.getpid(),
            command=command,
            since=datetime.datetime.now(datetime.UTC),
        )

    def comment(self) -> str:
        data = {
            "host": self.host,
            "pid": self.pid,
            "command": self.command[:300],
            "since": self.since.isoformat(),
        }
        text = json.dumps(data, ensure_ascii=True).replace("*/", "* /")
        return f"/* {_COMMENT_TAG}{text} */ "


#: The session that holds the advisory lock of a key (parameters: :func:`holder_params`),
#: what ``pg_stat_activity`` says of it, and the statement its runner session (the one
#: that applies migrations, :func:`runner_application`) runs now.
HOLDER_SQL = """
    SELECT l.pid, a.query, a.client_addr, a.application_name,
      (SELECT left(r.query, 1000) FROM pg_stat_activity r
       WHERE r.datname = current_database() AND starts_with(r.application_name, %s)
       ORDER BY r.backend_start DESC LIMIT 1)
    FROM pg_locks l
    LEFT JOIN pg_stat_activity a ON a.pid = l.pid
    WHERE l.locktype = 'advisory'
      AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
      AND l.classid::bigint = %s AND l.objid::bigint = %s AND l.objsubid = 1
      AND l.granted
"""


def holder_params(key: int) -> tuple[str, int, int]:
    """The parameters of :data:`HOLDER_SQL`: the runner sessions' ``application_name``
    prefix, and ``key`` as ``pg_locks`` shows a bigint advisory key (classid, objid)."""
    return runner_application(key), (key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF


def holder_from_row(row: tuple[Any, ...]) -> Holder:
    """A :data:`HOLDER_SQL` row as a :class:`Holder`."""
    pid, query, client_addr, application_name, running = row
    holder = _parse_holder(int(pid), query, client_addr)
    return dataclasses.replace(
        holder, application_name=application_name or None, query=running or None
    )


def _parse_holder(pid: int, query: str | None, client_addr: Any) -> Holder:
    addr = str(client_addr) if client_addr else None
    if query and _COMMENT_TAG in query:
        start = query.index(_COMMENT_TAG) + len(_COMMENT_TAG)
        end = query.find(" */", start)
        try:
            data = json.loads(query[start:end])
            return Holder(
                pid=pid,
                host=str(data.get("host") or "") or None,
                runner_pid=int(data["pid"]) if data.get("pid") else None,
                command=str(data.get("command") or "") or None,
                since=datetime.datetime.fromisoformat(data["since"]) if data.get("since") else None,
                client_addr=addr,
            )
        except (ValueError, KeyError, TypeError):
            pass
    return Holder(pid=pid, client_addr=addr)


class MigrationLock:
    """A session advisory lock on a dedicated connection.

    ``wrapper`` is a fresh, unshared Django database wrapper (see
    :func:`dedicated_connection`); it stays in autocommit mode, so no statement
    on it ever opens a transaction or keeps a snapshot.
    """

    def __init__(
        self,
        wrapper: BaseDatabaseWrapper,
        key: int,
        info: HolderInfo,
        *,
        database: str = "",
        schema: str = "",
    ) -> None:
        self.wrapper = wrapper
        self.key = key
        self.info = info
        self.database = database
        self.schema = schema
        self.acquired = False
        self.backend_pid: int | None = None
        # Built once: every statement on the lock connection carries it (checks run
        # before every step). With parameters, a "%" of the command line is doubled.
        self._comment = info.comment()
        self._comment_with_params = self._comment.replace("%", "%%")

    def _execute(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self.wrapper.cursor() as cursor:
            if params:
                cursor.execute(self._comment_with_params + sql, params)
            else:
                cursor.execute(self._comment + sql)
            return list(cursor.fetchall()) if cursor.description else []

    def prepare_session(self) -> None:
        """Refuse a pooled lock connection; otherwise name the session and keep it alive.

        One round trip. The settings are made only when the session that answers is
        the one the client was announced (``client_backend_pid``): behind a pooler
        they would stay on a pooled server session, so nothing is set there.
        """
        announced = client_backend_pid(self.wrapper)
        rows = self._execute(
            """
            SELECT pg_backend_pid(),
              CASE WHEN pg_backend_pid() = %s THEN set_config('application_name', %s, false) END,
              -- A server that ends idle sessions (idle_session_timeout, PostgreSQL 14+)
              -- would end this one, and release the lock, during a long step. Server-side
              -- keepalives notice a vanished runner in about a minute, not two hours.
              ARRAY(SELECT set_config(name, wanted.value, false)
                    FROM pg_settings
                    JOIN (VALUES ('idle_session_timeout', '0'), ('tcp_keepalives_idle', '30'),
                                 ('tcp_keepalives_interval', '10'), ('tcp_keepalives_count', '3'))
                         AS wanted (name, value) USING (name)
                    WHERE pg_backend_pid() = %s)
            """,
            (
                announced or 0,
                f"django_safemigrate lock {key_tag(self.key)} {self.info.host}:{self.info.pid}"[
                    :63
                ],
                announced or 0,
            ),
        )
        server_pid = int(rows[0][0])
        if pooled(self.wrapper, server_pid):
            raise UsageError(
                f"The migration lock for database '{self.database}' would go through a "
                "connection pooler (the server session that answered, backend pid "
                f"{server_pid}, is not the one the connection was given, {announced}): a "
                "session lock there can stay on one pooled server session while the next "
                "statement runs on another (PgBouncer in transaction mode), so it cannot "
                "serialise migrations. Add a database alias that connects to PostgreSQL "
                "directly and name it with --lock-database or SAFEMIGRATE['LOCK_DATABASE']; "
                "migrations may still go through the pooler. Nothing was locked or applied."
            )

    def try_acquire(self) -> bool:
        rows = self._execute("SELECT pg_try_advisory_lock(%s), pg_backend_pid()", (self.key,))
        got, pid = rows[0]
        if got:
            self.acquired = True
            self.backend_pid = int(pid)
        return bool(got)

    def holder(self) -> Holder | None:
        rows = self._execute(HOLDER_SQL, holder_params(self.key))
        return holder_from_row(rows[0]) if rows else None

    def describe(self) -> str:
        schema = f", schema '{self.schema}'" if self.schema else ""
        return f"the migration lock for database '{self.database}'{schema}"

    def verify_held(self, where: str) -> None:
        """Raise :class:`LockLost` unless this session still holds the lock.

        One round trip on the lock's own connection, never a reconnection: a new
        session would not hold the lock. A session advisory lock goes only with
        ``pg_advisory_unlock`` (called by :meth:`release` alone) or with its
        session, so the session that took it answering proves that it still holds
        it; reading ``pg_locks`` instead would copy the server's whole lock table
        on every check. The statement carries the holder comment, so waiters keep
        reading who holds the lock from ``pg_stat_activity``. The wait for the answer
        is bounded (:data:`CHECK_TIMEOUT`): a connection that stops answering counts
        as lost.
        """
        if not self.acquired:
            return
        if self.wrapper.connection is None:
            self._lost(
                where,
                f"its session (backend pid {self.backend_pid}) is gone (the connection was closed)",
            )
        raw = self.wrapper.connection
        try:
            if hasattr(raw, "pgconn"):
                pid = int(
                    _round_trip(raw, self._comment + "SELECT pg_backend_pid()", CHECK_TIMEOUT)
                )
            else:  # another driver: no bound but TCP's
                pid = self._execute("SELECT pg_backend_pid()")[0][0]
        except TimeoutError as exc:
            self._lost(where, f"its session (backend pid {self.backend_pid}) {exc}")
        except (DatabaseError, OSError, psycopg.Error) as exc:
            self._lost(
                where, f"its session (backend pid {self.backend_pid}) is gone ({_first_line(exc)})"
            )
        if pid != self.backend_pid:
            self._lost(
                where,
                f"its connection now reaches another session (backend pid {pid}, not "
                f"{self.backend_pid})",
            )

    def _lost(self, where: str, what: str) -> typing.NoReturn:
        self.acquired = False
        raise LockLost(f"Lost {self.describe()} {where}: {what}.")

    def release(self) -> bool:
        """Unlock; silent when the session is already gone (the server released it).

        True when the session is known to hold nothing of this lock any more: it never
        took it, or unlocking it answered that it did.
        """
        if not self.acquired:
            return True
        self.acquired = False
        try:
            rows = self._execute("SELECT pg_advisory_unlock(%s)", (self.key,))
        except DatabaseError:
            return False
        return bool(rows and rows[0][0])


#: The longest a check of the lock may wait for the lock's session to answer. The
#: statement is trivial and the session idle: only a cut or hung connection is slower.
CHECK_TIMEOUT = 10.0


def _round_trip(raw: Any, sql: str, timeout: float) -> Any:
    """Run ``sql`` (no parameters) on psycopg connection ``raw``; the first value of
    its first row. Raises :class:`TimeoutError` when no answer came within ``timeout``
    seconds, whatever the network does meanwhile (a middlebox that keeps the TCP
    connection open but forwards nothing would otherwise keep a blocking call waiting
    forever), and ``psycopg.Error`` when the connection fails.

    libpq's asynchronous calls on the connection's own socket, with a deadline: the
    connection is in autocommit and idle before and after, so psycopg's view of it
    stays true.
    """
    from psycopg import pq

    pgconn = raw.pgconn
    deadline = time.monotonic() + timeout

    def wait(readable: bool) -> None:
        left = deadline - time.monotonic()
        sockets = [pgconn.socket]
        if left <= 0 or not any(
            select.select(sockets if readable else [], [] if readable else sockets, [], left)
        ):
            raise TimeoutError(f"did not answer within {timeout:g} s")

    pgconn.send_query(sql.encode())
    while pgconn.flush():
        wait(readable=False)
    value: Any = None
    error: str | None = None
    while True:
        pgconn.consume_input()
        while not pgconn.is_busy():
            result = pgconn.get_result()
            if result is None:
                if error is not None:
                    raise psycopg.OperationalError(error)
                return value
            if result.status == pq.ExecStatus.TUPLES_OK and result.ntuples and value is None:
                value = result.get_value(0, 0)
            elif result.status not in (pq.ExecStatus.TUPLES_OK, pq.ExecStatus.COMMAND_OK):
                error = (result.error_message or b"").decode(errors="replace").strip() or "error"
        wait(readable=True)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def dedicated_connection(template: BaseDatabaseWrapper, alias: str) -> BaseDatabaseWrapper:
    """A new connection with ``template``'s settings that nobody else uses.

    TCP keepalives are switched on (unless configured) so that a lock held
    across a long migration is not dropped silently by an idle-connection
    firewall, and a vanished runner's session is noticed by the server.
    """
    settings_dict = {**template.settings_dict}
    options = dict(settings_dict.get("OPTIONS") or {})
    options.setdefault("keepalives", 1)
    options.setdefault("keepalives_idle", 30)
    options.setdefault("keepalives_interval", 10)
    options.setdefault("keepalives_count", 3)
    # Keepalives only probe an idle connection. A statement sent to a peer that
    # vanished without a word (a firewall dropped the flow) would wait for TCP's
    # retransmissions, up to about 15 minutes; this bounds that wait, so the check
    # before the next step fails in seconds instead.
    options.setdefault("tcp_user_timeout", 30000)
    # A server-side connection pool would hand the lock session back to the pool.
    options.pop("pool", None)
    settings_dict["OPTIONS"] = options
    settings_dict["CONN_MAX_AGE"] = 0
    wrapper: BaseDatabaseWrapper = type(template)(settings_dict, alias)
    return wrapper


@contextlib.contextmanager
def migration_lock(
    *,
    target: BaseDatabaseWrapper,
    lock_via: BaseDatabaseWrapper,
    command: str,
    wait: float,
    poll_interval: float,
    on_wait: Callable[[Holder | None, float, bool], None],
    on_poll: Callable[[Holder | None, float], None] | None = None,
) -> Iterator[MigrationLock]:
    """Hold the migration lock for ``target``'s database while the block runs.

    ``lock_via`` is the connection whose settings the lock session uses (the
    target itself, or a direct-connection alias behind a pooler). ``on_wait`` is
    called when the runner starts waiting and every :data:`REPORT_EVERY` seconds
    after, with the holder, the seconds waited so far and whether this is the
    first report; ``on_poll`` after every attempt that found the lock taken (for the
    run's events, :mod:`.events`). Raises :class:`LockTimeout` after ``wait`` seconds.
    """
    with target.cursor() as cursor:
        cursor.execute("SELECT current_database(), current_schema()")
        database, schema = cursor.fetchone()
    schema = schema or "public"
    # Same alias as the connection it copies: connection hooks such as
    # django.contrib.postgres's type registration look their alias up in
    # ``connections``. The wrapper itself is never registered there.
    parking = _parking_key(lock_via)
    wrapper = _Parking.sessions.pop(parking, None) if _Parking.reuse else None
    if wrapper is not None and not wrapper.is_usable():
        with contextlib.suppress(DatabaseError):
            wrapper.close()
        wrapper = None
    if wrapper is None:
        wrapper = dedicated_connection(lock_via, lock_via.alias)
    lock = MigrationLock(
        wrapper,
        lock_key(database, schema),
        HolderInfo.current(command),
        database=database,
        schema=schema,
    )
    ended_well = False
    try:
        wrapper.ensure_connection()
        # Before anything is locked or set: a pooled lock connection is refused here,
        # with one statement, so a refused run leaves nothing on a pooled server
        # session and never waits for a busy pool's only server connection.
        lock.prepare_session()
        _acquire(
            lock,
            wait=wait,
            poll_interval=poll_interval,
            on_wait=on_wait,
            database=database,
            on_poll=on_poll,
        )
        yield lock
        ended_well = True
    finally:
        released = False
        try:
            released = lock.release()
        finally:
            if _Parking.reuse and ended_well and released and wrapper.connection is not None:
                _Parking.sessions[parking] = wrapper
            else:
                with contextlib.suppress(DatabaseError):
                    wrapper.close()


class _Parking:
    """Within :func:`reused_lock_sessions`: lock connections whose run ended well and
    whose lock was released, kept for the next run of this process on the same settings."""

    reuse = False
    sessions: typing.ClassVar[dict[tuple[str, str], BaseDatabaseWrapper]] = {}


def _parking_key(lock_via: BaseDatabaseWrapper) -> tuple[str, str]:
    # django-tenants keeps the schema it points the connection at in the settings; the
    # lock's session names its schema in the lock's key, not in its search path.
    settings = {k: v for k, v in lock_via.settings_dict.items() if k != "SCHEMA"}
    return lock_via.alias, repr(sorted(settings.items(), key=lambda kv: kv[0]))


@contextlib.contextmanager
def reused_lock_sessions() -> Iterator[None]:
    """Keep lock connections from one run to the next within the block.

    A fleet deploy takes one lock after another (one per schema) in the same process;
    opening a new session for each would cost a connection per schema. A session is kept
    only after a run that ended without an error and whose unlock answered that it held
    the lock; the next run names it again (``application_name``) and takes its own
    schema's lock on it. Closed when the block ends; :func:`close_parked_lock_sessions`
    before forking, so that no child shares a parent's session.
    """
    previous, _Parking.reuse = _Parking.reuse, True
    try:
        yield
    finally:
        _Parking.reuse = previous
        if not previous:
            close_parked_lock_sessions()


def close_parked_lock_sessions() -> None:
    while _Parking.sessions:
        _, wrapper = _Parking.sessions.popitem()
        with contextlib.suppress(DatabaseError):
            wrapper.close()


def _acquire(
    lock: MigrationLock,
    *,
    wait: float,
    poll_interval: float,
    on_wait: Callable[[Holder | None, float, bool], None],
    database: str,
    on_poll: Callable[[Holder | None, float], None] | None = None,
) -> None:
    started = time.monotonic()
    next_report = 0.0
    while not lock.try_acquire():
        waited = time.monotonic() - started
        holder = lock.holder()
        if on_poll is not None:
            on_poll(holder, waited)
        if waited >= wait:
            who = holder.describe() if holder else "a session that released it a moment ago"
            raise LockTimeout(
                f"Could not take the migration lock for database '{database}' within "
                f"{wait:g} seconds: it is held by {who}. Another deploy is probably applying "
                "migrations; wait for it to finish, or give more time with --lock-wait "
                "or SAFEMIGRATE['LOCK_WAIT']. Nothing was applied."
            )
        if waited >= next_report:
            on_wait(holder, waited, next_report == 0.0)
            next_report = waited + REPORT_EVERY
        time.sleep(max(0.0, min(poll_interval, wait - waited)))


def command_line() -> str:
    """The running command line, for the ledger and the lock holder's description."""
    argv = list(sys.argv)
    if argv and argv[0].endswith(("manage.py", "django-admin")):
        argv[0] = os.path.basename(argv[0])
    return " ".join(argv)


def run_command_line(command_name: str, *, from_command_line: bool) -> str:
    """What the ledger records as a run's command line.

    The process's own command line when the command was given on it; when another
    management command runs it (django-tenants' ``migrate_schemas`` runs it once per
    schema), that command's line and the command it ran; when code calls it
    (``call_command``), the command's name.
    """
    if from_command_line:
        return command_line()
    if sys.argv and sys.argv[0].endswith(("manage.py", "django-admin")):
        return f"{command_line()} (running {command_name})"
    return command_name
