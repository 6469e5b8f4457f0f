"""Losing the migration lock mid-run, with real processes.

A runner applies a plan whose Python waits at a chosen migration; the test ends
the lock's backend with ``pg_terminate_backend`` while it waits. Whatever was
running is rolled back (a transactional step) or recorded as done (an
autocommit step), nothing after it runs, the command exits 4 with one paragraph
and no traceback, the ledger says ``interrupted``, and a rerun finishes the rest.
Also: runners of two schemas of one database leave each other alone, a lock
session outlives the server's ``idle_session_timeout``, and a lock connection
that stops answering (a hung middlebox) is given up in bounded time.
"""

from __future__ import annotations

import select
import socket
import threading
import time
from pathlib import Path

import pytest
from psycopg.conninfo import conninfo_to_dict

from django_safemigrate.execution.lock import lock_key
from tests.helpers import (
    applied,
    command_env,
    copy_scenario,
    fresh_database,
    lock_holder_pid,
    query,
    run_command,
    start_command,
    url_for,
    wait_for,
)

# Lock and crash mechanics, the same on every Django version: CI runs them in its first pass.
pytestmark = pytest.mark.once

ALL = [
    ("lockloss", "0001_initial"),
    ("lockloss", "0002_outside_transaction"),
    ("lockloss", "0003_in_transaction"),
    ("lockloss", "0004_other"),
]


@pytest.fixture
def database():
    with fresh_database() as name:
        yield name


@pytest.fixture
def env(tmp_path: Path, database: str) -> dict[str, str]:
    copy_scenario("lockloss", tmp_path)
    env = command_env(database, apps=["lockloss"], pythonpath=[tmp_path])
    run_command(["safemigrate", "lockloss", "0001"], env, expect=0)
    return env


def waiting_at(env: dict[str, str], tag: str, tmp_path: Path) -> tuple[dict[str, str], Path, Path]:
    ready, go = tmp_path / f"ready-{tag}", tmp_path / f"go-{tag}"
    return (
        {**env, "LOCKLOSS_WAIT": tag, "LOCKLOSS_READY": str(ready), "LOCKLOSS_GO": str(go)},
        ready,
        go,
    )


def lose_the_lock_while_waiting(
    database: str, args: list[str], env: dict[str, str], ready: Path, go: Path
) -> tuple[int, str, str]:
    """Start ``args``; once its Python waits, terminate the lock's backend, let it go on."""
    proc = start_command(args, env)
    try:
        wait_for(lambda: ready.exists() or proc.poll() is not None, timeout=60)
        assert ready.exists(), proc.communicate()
        pid = lock_holder_pid(database)
        assert pid is not None
        assert query(database, "SELECT pg_terminate_backend(%s)", [pid]) == [(True,)]
        wait_for(lambda: lock_holder_pid(database) is None)
        go.write_text("go")
        out, err = proc.communicate(timeout=60)
    except BaseException:
        proc.kill()
        proc.communicate()
        raise
    return proc.returncode, out, err


def column_exists(database: str, table: str, column: str) -> bool:
    rows = query(
        database,
        "SELECT count(*) FROM pg_attribute WHERE attrelid = to_regclass(%s) "
        "AND attname = %s AND NOT attisdropped",
        [table, column],
    )
    return bool(rows[0][0])


def rows_named(database: str, name: str) -> int:
    return int(query(database, "SELECT count(*) FROM lockloss_item WHERE name = %s", [name])[0][0])


def last_run(database: str) -> tuple[str, int, str]:
    row = query(
        database,
        "SELECT outcome, exit_code, message FROM django_safemigrate_run ORDER BY id DESC LIMIT 1",
    )[0]
    return str(row[0]), int(row[1]), str(row[2])


def assert_one_paragraph(err: str) -> None:
    assert "Traceback" not in err
    assert err.strip().count("\n") == 0, err


@pytest.mark.parametrize("command", ["safemigrate", "migrate"])
def test_lost_during_a_transactional_step_rolls_it_back_and_stops(database, env, tmp_path, command):
    waiting, ready, go = waiting_at(env, "0003", tmp_path)
    code, out, err = lose_the_lock_while_waiting(database, [command], waiting, ready, go)

    assert code == 4, f"stdout:\n{out}\nstderr:\n{err}"
    assert_one_paragraph(err)
    assert "Lost the migration lock for database" in err
    assert "schema 'public'" in err
    # Where it was noticed: before the COMMIT of the migration that was running.
    assert "lockloss.0003_in_transaction" in err
    assert "rolled back" in err
    assert "finished" in err
    assert "lockloss.0002_outside_transaction" in err
    assert f"run {command} again" in err

    # 0003 was rolled back whole; nothing after it ran.
    assert [k for k in applied(database, "lockloss")] == ALL[:2]
    assert rows_named(database, "0003") == 0
    assert not column_exists(database, "lockloss_item", "note")
    assert query(database, "SELECT to_regclass('lockloss_other')") == [(None,)]
    outcome, exit_code, message = last_run(database)
    assert (outcome, exit_code) == ("interrupted", 4)
    assert "lockloss.0003_in_transaction" in message
    # Not recorded as a failed migration: it did not fail, it was stopped.
    assert query(
        database,
        "SELECT count(*) FROM django_safemigrate_migrationrecord WHERE outcome = 'failed'",
    ) == [(0,)]

    run_command([command], env, expect=0)
    assert applied(database, "lockloss") == ALL
    assert rows_named(database, "0003") == 1
    assert column_exists(database, "lockloss_item", "note")


@pytest.mark.parametrize("command", ["safemigrate", "migrate"])
def test_both_sessions_ended_is_reported_as_the_lost_lock(database, env, tmp_path, command):
    """What a server restart does to a runner: its lock session and its migration
    session both end. The step fails on the dead connection, and the cause reported
    is the lost lock (exit 4), not a failed migration."""
    waiting, ready, go = waiting_at(env, "0003", tmp_path)
    proc = start_command([command], waiting)
    try:
        wait_for(lambda: ready.exists() or proc.poll() is not None, timeout=60)
        assert ready.exists(), proc.communicate()
        lock_pid = lock_holder_pid(database)
        migration_pids = idle_in_transaction(database)
        assert lock_pid is not None
        assert len(migration_pids) == 1
        query(
            database,
            "SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) AS pid",
            [[lock_pid, *migration_pids]],
        )
        go.write_text("go")
        out, err = proc.communicate(timeout=60)
    except BaseException:
        proc.kill()
        proc.communicate()
        raise
    assert proc.returncode == 4, f"stdout:\n{out}\nstderr:\n{err}"
    assert_one_paragraph(err)
    assert "while applying lockloss.0003_in_transaction" in err
    assert applied(database, "lockloss") == ALL[:2]
    assert not column_exists(database, "lockloss_item", "note")
    assert last_run(database)[:2] == ("interrupted", 4)
    run_command([command], env, expect=0)
    assert applied(database, "lockloss") == ALL


def test_lost_during_an_autocommit_step_stops_before_the_next_step(database, env, tmp_path):
    waiting, ready, go = waiting_at(env, "0002", tmp_path)
    code, out, err = lose_the_lock_while_waiting(database, ["safemigrate"], waiting, ready, go)

    assert code == 4, f"stdout:\n{out}\nstderr:\n{err}"
    assert_one_paragraph(err)
    assert "before step 2/2 of lockloss.0002_outside_transaction" in err
    assert "step 1/2 of lockloss.0002_outside_transaction" in err.split("finished")[1]
    # The autocommit Python ran (and is recorded as a finished step); the next step did not.
    assert rows_named(database, "0002") == 1
    assert not column_exists(database, "lockloss_item", "code")
    assert applied(database, "lockloss") == ALL[:1]
    assert query(
        database,
        "SELECT step_index, step_count FROM django_safemigrate_steprecord "
        "WHERE name = '0002_outside_transaction'",
    ) == [(0, 2)]
    outcome, exit_code, message = last_run(database)
    assert (outcome, exit_code) == ("interrupted", 4)
    assert "step 1/2 of lockloss.0002_outside_transaction" in message

    result = run_command(["safemigrate", "-v", "2"], env, expect=0)
    assert "step 1/2" in result.out
    assert "already done, skipped" in result.out
    assert applied(database, "lockloss") == ALL
    assert rows_named(database, "0002") == 1  # the finished step did not run again
    assert column_exists(database, "lockloss_item", "code")


def runner_sessions(database: str, schema: str) -> list[int]:
    """Sessions marked as a runner of ``schema``'s lock key."""
    from django_safemigrate.execution.lock import key_tag

    prefix = f"django_safemigrate runner {key_tag(lock_key(database, schema))} "
    rows = query(
        database,
        "SELECT pid FROM pg_stat_activity WHERE datname = %s AND starts_with(application_name, %s)",
        [database, prefix],
    )
    return [int(pid) for (pid,) in rows]


def idle_in_transaction(database: str) -> list[int]:
    rows = query(
        database,
        "SELECT pid FROM pg_stat_activity WHERE datname = %s AND state = 'idle in transaction'",
        [database],
    )
    return [int(pid) for (pid,) in rows]


def test_runners_of_two_schemas_leave_each_other_alone(database, tmp_path):
    copy_scenario("lockloss", tmp_path)
    query(database, "CREATE SCHEMA tenant1; CREATE SCHEMA tenant2")
    envs = {
        schema: command_env(
            database,
            apps=["lockloss"],
            pythonpath=[tmp_path],
            extra={"DATABASE_SEARCH_PATH": schema},
        )
        for schema in ("tenant1", "tenant2")
    }
    for env in envs.values():
        run_command(["safemigrate", "lockloss", "0001"], env, expect=0)

    waiting, ready, go = waiting_at(envs["tenant1"], "0003", tmp_path)
    first = start_command(["safemigrate"], waiting)
    try:
        wait_for(lambda: ready.exists() or first.poll() is not None, timeout=60)
        assert ready.exists(), first.communicate()
        # The first runner's migration session waits inside 0003's transaction.
        waiting_session = idle_in_transaction(database)
        assert len(waiting_session) == 1
        # The second tenant's runner takes its own lock and claims its own session.
        second = run_command(["safemigrate"], envs["tenant2"], expect=0)
        assert "Ended" not in second.err
        assert idle_in_transaction(database) == waiting_session
        assert runner_sessions(database, "tenant1") == waiting_session
        go.write_text("go")
        out, err = first.communicate(timeout=60)
    except BaseException:
        first.kill()
        first.communicate()
        raise
    assert first.returncode == 0, f"stdout:\n{out}\nstderr:\n{err}"
    for schema in ("tenant1", "tenant2"):
        rows = query(
            database,
            f"SELECT app, name FROM {schema}.django_migrations WHERE app = 'lockloss' ORDER BY id",
        )
        assert rows == ALL
    assert not runner_sessions(database, "tenant1")
    assert not runner_sessions(database, "tenant2")


def test_the_lock_session_outlives_a_server_idle_session_timeout(database, tmp_path):
    """A long step leaves the lock connection idle; a server that ends idle sessions
    (``idle_session_timeout``, here 2 s for the database) must not end the lock's."""
    if int(query(database, "SHOW server_version_num")[0][0]) < 140000:
        pytest.skip("idle_session_timeout needs PostgreSQL 14")
    copy_scenario("slow", tmp_path)
    env = command_env(database, apps=["slow"], pythonpath=[tmp_path])
    run_command(["safemigrate", "slow", "0001"], env, expect=0)
    query(database, f'ALTER DATABASE "{database}" SET idle_session_timeout = 2000')
    # The migration waits 5 s in its transaction; the lock session is idle meanwhile.
    result = run_command(["safemigrate"], {**env, "SLOW_SECONDS": "5"}, expect=0)
    assert "Traceback" not in result.err
    assert ("slow", "0002_takes_a_while") in applied(database, "slow")
    assert last_run(database)[:2] == ("applied", 0)


class FreezableProxy:
    """A TCP proxy to the test server that can stop forwarding while keeping every
    connection open: what a hung middlebox does, and what TCP alone never notices."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.frozen = threading.Event()
        self.closed = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.sockets: list[socket.socket] = [self.listener]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closed.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream)
            self.sockets += [client, server]
            for source, target in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, target), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket) -> None:
        try:
            while not self.closed.is_set():
                if self.frozen.is_set():
                    time.sleep(0.05)
                    continue
                ready, _, _ = select.select([source], [], [], 0.05)
                if not ready or self.frozen.is_set():
                    continue
                data = source.recv(65536)
                if not data:
                    break
                target.sendall(data)
        except OSError:
            pass
        finally:
            target.close()

    def close(self) -> None:
        self.closed.set()
        for sock in self.sockets:
            sock.close()


def test_a_lock_connection_that_stops_answering_is_lost_in_bounded_time(database, env, tmp_path):
    """The lock goes through a proxy that freezes mid-run, connections left open: the
    check before the next COMMIT gives up after its bound, instead of waiting forever."""
    server = conninfo_to_dict(url_for(database))
    proxy = FreezableProxy((server.get("host") or "127.0.0.1", int(server.get("port") or 5432)))
    try:
        direct = f"postgres://{server.get('user') or 'postgres'}@127.0.0.1:{proxy.port}/{database}"
        waiting, ready, go = waiting_at({**env, "DIRECT_DATABASE_URL": direct}, "0003", tmp_path)
        proc = start_command(["safemigrate", "--lock-database", "direct"], waiting)
        try:
            wait_for(lambda: ready.exists() or proc.poll() is not None, timeout=60)
            assert ready.exists(), proc.communicate()
            proxy.frozen.set()
            frozen_at = time.monotonic()
            go.write_text("go")
            out, err = proc.communicate(timeout=60)
        except BaseException:
            proc.kill()
            proc.communicate()
            raise
        took = time.monotonic() - frozen_at
    finally:
        proxy.close()  # ends the lock's server session, as a middlebox giving up would
    assert proc.returncode == 4, f"stdout:\n{out}\nstderr:\n{err}"
    assert_one_paragraph(err)
    assert "before committing step 1/1 of lockloss.0003_in_transaction" in err
    assert "did not answer within 10 s" in err
    assert took < 30
    assert applied(database, "lockloss") == ALL[:2]
    assert not column_exists(database, "lockloss_item", "note")
    assert last_run(database)[:2] == ("interrupted", 4)
    wait_for(lambda: lock_holder_pid(database) is None, timeout=30)
    run_command(["safemigrate"], env, expect=0)
    assert applied(database, "lockloss") == ALL
