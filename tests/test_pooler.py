"""Through PgBouncer: no advisory lock and no session setting left on a pooled server session.

A session lock serialises nothing through PgBouncer in transaction mode, so a
lock connection that goes through a pooler is refused before anything is locked
or set on it (exit 2), and ``--lock-database`` pointed at a direct connection
works while the migrations themselves go through the pooler. Afterwards every
pooled server session is read through PgBouncer: no advisory lock, our
``application_name`` nowhere, ``lock_timeout`` and ``statement_timeout`` at the
server's defaults. Needs the ``pgbouncer`` binary (CI installs Debian's package,
which is started here as an unprivileged user); skipped where it is missing.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from tests.helpers import (
    applied,
    command_env,
    copy_scenario,
    fresh_database,
    query,
    run_command,
    server_url,
    table_exists,
    url_for,
    wait_for,
)

PGBOUNCER = shutil.which("pgbouncer") or (
    "/usr/sbin/pgbouncer" if os.path.exists("/usr/sbin/pgbouncer") else None
)
pytestmark = [
    pytest.mark.skipif(PGBOUNCER is None, reason="the pgbouncer binary is not installed"),
    # A pooler in front of the lock, the same on every Django version: CI's first pass only.
    pytest.mark.once,
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def start_pgbouncer(stack: ExitStack, mode: str = "transaction", pool_size: int = 4) -> int:
    """PgBouncer in front of the test server (stopped with ``stack``); returns its port."""
    server = conninfo_to_dict(server_url())
    user = server.get("user") or "postgres"
    # A directory of our own directly under the temp dir (pytest's own is 0700), so
    # the unprivileged pgbouncer user can read its configuration.
    workdir = Path(tempfile.mkdtemp(prefix="safemigrate-pgbouncer-"))
    stack.callback(shutil.rmtree, workdir, ignore_errors=True)
    workdir.chmod(0o755)
    port = free_port()
    (workdir / "users.txt").write_text(f'"{user}" "{server.get("password") or ""}"\n')
    (workdir / "pgbouncer.ini").write_text(
        "[databases]\n"
        f"* = host={server.get('host') or '127.0.0.1'} port={server.get('port') or 5432}\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\n"
        f"unix_socket_dir =\nauth_type = trust\nauth_file = {workdir / 'users.txt'}\n"
        f"pool_mode = {mode}\ndefault_pool_size = {pool_size}\n"
        "logfile =\npidfile =\n"
    )
    for path in workdir.iterdir():
        path.chmod(0o644)
    kwargs: dict[str, Any] = {}
    if os.geteuid() == 0:  # pgbouncer refuses to run as root
        nobody = pwd.getpwnam("nobody")
        kwargs = {"user": nobody.pw_uid, "group": nobody.pw_gid, "extra_groups": []}
    log = (workdir / "pgbouncer.log").open("wb")
    stack.callback(log.close)
    assert PGBOUNCER is not None
    proc = subprocess.Popen(
        [PGBOUNCER, str(workdir / "pgbouncer.ini")], stdout=log, stderr=log, **kwargs
    )

    def stop() -> None:
        proc.terminate()
        proc.wait(timeout=10)

    stack.callback(stop)
    try:
        wait_for(lambda: listening(port) or proc.poll() is not None, timeout=10)
    finally:
        log.flush()
    assert proc.poll() is None, (workdir / "pgbouncer.log").read_text()
    return port


@pytest.fixture
def pgbouncer() -> Iterator[Callable[..., int]]:
    """``pgbouncer(mode="transaction", pool_size=4)`` starts one; all stop at the end."""
    with ExitStack() as stack:
        yield lambda mode="transaction", pool_size=4: start_pgbouncer(stack, mode, pool_size)


@pytest.fixture
def pooler(pgbouncer: Callable[..., int]) -> int:
    """PgBouncer in transaction mode in front of the test server; its port."""
    return pgbouncer()


def pooled_url(database: str, port: int) -> str:
    params = conninfo_to_dict(url_for(database))
    return f"postgres://{params.get('user') or 'postgres'}@127.0.0.1:{port}/{database}"


def pooled_sessions(database: str, port: int, count: int) -> list[tuple[Any, ...]]:
    """What ``count`` server sessions of the pool carry, read through PgBouncer.

    Each client holds a transaction open, so each is given a server session of its
    own: with ``count`` equal to the pool size, every server session of the pool.
    """
    with ExitStack() as stack:
        clients = [
            stack.enter_context(
                psycopg.connect(pooled_conninfo(database, port), prepare_threshold=None)
            )
            for _ in range(count)
        ]
        rows = [client.execute(SESSION_STATE).fetchone() for client in clients]
    return [row for row in rows if row is not None]


SESSION_STATE = """
    SELECT pg_backend_pid(), current_setting('application_name'),
           current_setting('lock_timeout'), current_setting('statement_timeout'),
           (SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid())
"""


def pooled_conninfo(database: str, port: int) -> str:
    user = conninfo_to_dict(server_url()).get("user") or "postgres"
    return f"host=127.0.0.1 port={port} dbname={database} user={user}"


@contextmanager
def application_traffic(
    database: str, port: int, clients: int = 2
) -> Iterator[list[tuple[Any, ...]]]:
    """Clients that, like an application, run short transactions through PgBouncer
    while the block runs, each noting what its server session carries."""
    seen: list[tuple[Any, ...]] = []
    errors: list[BaseException] = []
    stop = threading.Event()

    def client() -> None:
        # No server-side prepared statements: PgBouncer 1.18 does not carry them
        # from one server session to the next in transaction mode.
        try:
            with psycopg.connect(pooled_conninfo(database, port), prepare_threshold=None) as conn:
                while not stop.is_set():
                    seen.append(conn.execute(SESSION_STATE).fetchone() or ())
                    conn.commit()
                    time.sleep(0.005)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    try:
        yield seen
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
    assert not errors, errors


def ours(sessions: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """The sessions that carry an advisory lock, our name or a timeout not the default's."""
    return [
        row
        for row in sessions
        if row[1].startswith("django_safemigrate") or tuple(row[2:]) != ("0", "0", 0)
    ]


def assert_nothing_of_ours_remains(database: str, port: int, pool_size: int) -> None:
    sessions = pooled_sessions(database, port, pool_size)
    assert len({pid for pid, *_ in sessions}) == pool_size
    assert ours(sessions) == []
    # And seen from the server: no advisory lock in the database, no session named ours.
    assert query(
        database,
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
        "AND database = (SELECT oid FROM pg_database WHERE datname = %s)",
        [database],
    ) == [(0,)]
    assert query(
        database,
        "SELECT count(*) FROM pg_stat_activity WHERE datname = %s "
        "AND application_name LIKE 'django_safemigrate%%'",
        [database],
    ) == [(0,)]


@pytest.mark.parametrize(
    ("mode", "pool_size"), [("transaction", 1), ("transaction", 4), ("session", 2)]
)
def test_refuses_a_lock_through_a_pooler_before_locking_anything(
    pgbouncer, tmp_path, mode, pool_size
):
    """Detected from the backend pid PgBouncer announces (its own, in both modes)."""
    port = pgbouncer(mode, pool_size)
    copy_scenario("basic", tmp_path)
    with fresh_database() as database:
        env = command_env(
            None, apps=["basic"], pythonpath=[tmp_path], database_url=pooled_url(database, port)
        )
        # Bounded: PgBouncer would queue a statement for its only server session for
        # query_wait_timeout (120 s) if the run held it in a transaction meanwhile.
        result = run_command(["safemigrate"], env, expect=2, timeout=30)
        assert result.elapsed < 15
        assert "Traceback" not in result.err
        assert result.err.strip().count("\n") == 0, result.err
        assert "connection pooler" in result.err
        assert "--lock-database" in result.err
        assert "SAFEMIGRATE['LOCK_DATABASE']" in result.err
        assert "Nothing was locked or applied" in result.err
        assert not table_exists(database, "basic_item")
        assert not table_exists(database, "django_migrations")
        if mode == "transaction":
            assert_nothing_of_ours_remains(database, port, pool_size)


def test_migrate_refuses_a_lock_through_a_pooler_without_a_traceback(pgbouncer, tmp_path):
    """The ``migrate`` override shares the run: same refusal, Django's error code."""
    port = pgbouncer("transaction", 1)
    copy_scenario("basic", tmp_path)
    with fresh_database() as database:
        env = command_env(
            None, apps=["basic"], pythonpath=[tmp_path], database_url=pooled_url(database, port)
        )
        result = run_command(["migrate"], env, expect=1, timeout=30)
        assert "Traceback" not in result.err
        assert "connection pooler" in result.err
        assert "--lock-database" in result.err
        assert not table_exists(database, "django_migrations")
        assert_nothing_of_ours_remains(database, port, 1)


@pytest.mark.parametrize("pool_size", [1, 4])
def test_lock_on_a_direct_connection_leaves_nothing_on_pooled_sessions(
    pgbouncer, tmp_path, pool_size
):
    """Migrations through PgBouncer in transaction mode, the lock on a direct connection.

    One-transaction migrations (``basic``, the contrib apps), an autocommit
    ``RunPython`` and a concurrent index build (``cic_index``): every timeout is
    ``SET LOCAL`` or not set at all, the runner's name is never set on a pooled
    session, and nothing waits for the pool's only server session.
    """
    port = pgbouncer("transaction", pool_size)
    copy_scenario("basic", tmp_path)
    copy_scenario("cic_index", tmp_path)
    with fresh_database() as database:
        env = command_env(
            None,
            apps=["basic", "cic_index"],
            pythonpath=[tmp_path],
            database_url=pooled_url(database, port),
            extra={"DIRECT_DATABASE_URL": url_for(database), "SLOW_SECONDS": "0"},
        )
        with application_traffic(database, port) as seen:
            result = run_command(
                ["safemigrate", "--lock-database", "direct"], env, expect=0, timeout=120
            )
        # The application never saw our lock, name or timeouts on its sessions.
        assert len(seen) > 10
        assert ours(seen) == []
        assert ("basic", "0003_item_sku") in applied(database)
        assert ("cic_index", "0002_event_kind_index") in applied(database)
        assert query(
            database,
            "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "WHERE c.relname = 'event_kind_idx'",
        ) == [(True,)]
        # The autocommit Python wanted the strong timeouts, which cannot be set there.
        assert "behind a connection pooler, this autocommit step runs under" in result.err
        assert_nothing_of_ours_remains(database, port, pool_size)


def test_lock_database_alias_bypasses_the_pooler(pooler, tmp_path):
    copy_scenario("basic", tmp_path)
    with fresh_database() as database:
        env = command_env(
            None,
            apps=["basic"],
            pythonpath=[tmp_path],
            database_url=pooled_url(database, pooler),
            extra={"DIRECT_DATABASE_URL": url_for(database)},
        )
        run_command(["safemigrate", "--lock-database", "direct"], env, expect=0)
        assert ("basic", "0003_item_sku") in applied(database)
        env["SAFEMIGRATE_JSON"] = '{"LOCK_DATABASE": "direct"}'
        run_command(["safemigrate"], env, expect=0)
