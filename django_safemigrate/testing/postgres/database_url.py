"""Choosing a server: ``DATABASE_URL`` when it is set, else a container or an embedded
server (throwaway for the tests, persistent for the example site)."""

from __future__ import annotations

import atexit
import os

from django_safemigrate.testing.postgres import container
from django_safemigrate.testing.postgres.announce import _announce
from django_safemigrate.testing.postgres.common import EXAMPLE_DATABASE, HELP, NoPostgreSQL
from django_safemigrate.testing.postgres.reaper import _destroy_at_exit, _spawn_reaper
from django_safemigrate.testing.postgres.runtime import _example_data_dir
from django_safemigrate.testing.postgres.server import EmbeddedPostgres


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
    if container.docker_available():
        try:
            url = container._start_container()
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
