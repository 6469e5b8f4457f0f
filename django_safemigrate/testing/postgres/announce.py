"""What a process that starts an embedded server says about it, once: its version, address,
data directory and the exact command that stops it."""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

from django_safemigrate.testing.postgres.runtime import (
    _get_runtime,
    _server_version,
    default_example_data_dir,
)
from django_safemigrate.testing.postgres.server import EmbeddedPostgres


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
