"""A session lock cannot serialise anything through PgBouncer in transaction mode.

``safemigrate`` must notice and refuse, and work through ``--lock-database``
pointed at a direct connection. Needs the ``pgbouncer`` binary (CI installs
Debian's package); skipped where it is missing.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from psycopg.conninfo import conninfo_to_dict

from tests.helpers import (
    applied,
    command_env,
    copy_scenario,
    fresh_database,
    run_command,
    server_url,
    table_exists,
    url_for,
    wait_for,
)

PGBOUNCER = shutil.which("pgbouncer") or (
    "/usr/sbin/pgbouncer" if os.path.exists("/usr/sbin/pgbouncer") else None
)
pytestmark = pytest.mark.skipif(PGBOUNCER is None, reason="the pgbouncer binary is not installed")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def pooler() -> Iterator[int]:
    """PgBouncer in transaction mode in front of the test server; yields its port."""
    server = conninfo_to_dict(server_url())
    user = server.get("user") or "postgres"
    # A directory of our own directly under the temp dir (pytest's own is 0700), so
    # the unprivileged pgbouncer user can read its configuration.
    workdir = Path(tempfile.mkdtemp(prefix="safemigrate-pgbouncer-"))
    workdir.chmod(0o755)
    port = free_port()
    (workdir / "users.txt").write_text(f'"{user}" "{server.get("password") or ""}"\n')
    (workdir / "pgbouncer.ini").write_text(
        "[databases]\n"
        f"* = host={server.get('host') or '127.0.0.1'} port={server.get('port') or 5432}\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\n"
        f"unix_socket_dir =\nauth_type = trust\nauth_file = {workdir / 'users.txt'}\n"
        "pool_mode = transaction\ndefault_pool_size = 4\n"
        "logfile =\npidfile =\n"
    )
    for path in workdir.iterdir():
        path.chmod(0o644)
    kwargs = {}
    if os.geteuid() == 0:  # pgbouncer refuses to run as root
        nobody = pwd.getpwnam("nobody")
        kwargs = {"user": nobody.pw_uid, "group": nobody.pw_gid, "extra_groups": []}
    log = (workdir / "pgbouncer.log").open("wb")
    proc = subprocess.Popen(
        [PGBOUNCER, str(workdir / "pgbouncer.ini")], stdout=log, stderr=log, **kwargs
    )
    try:
        try:
            wait_for(lambda: listening(port) or proc.poll() is not None, timeout=10)
        finally:
            log.flush()
        assert proc.poll() is None, (workdir / "pgbouncer.log").read_text()
        yield port
    finally:
        log.close()
        proc.terminate()
        proc.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)


def pooled_url(database: str, port: int) -> str:
    params = conninfo_to_dict(url_for(database))
    return f"postgres://{params.get('user') or 'postgres'}@127.0.0.1:{port}/{database}"


def test_refuses_to_lock_through_a_transaction_pooler(pooler, tmp_path):
    copy_scenario("basic", tmp_path)
    with fresh_database() as database:
        env = command_env(
            None,
            apps=["basic"],
            pythonpath=[tmp_path],
            database_url=pooled_url(database, pooler),
        )
        result = run_command(["safemigrate"], env, expect=2)
        assert "connection pooler in transaction mode" in result.err
        assert "LOCK_DATABASE" in result.err
        assert not table_exists(database, "basic_item")


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
