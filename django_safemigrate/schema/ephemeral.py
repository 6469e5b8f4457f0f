"""A throwaway database on the configured server, for migrations to run in.

``CREATE DATABASE`` and ``DROP DATABASE`` cannot run inside the database they name, so
both go through Django's maintenance connection (the server's ``postgres`` database, or
another configured database when that one cannot be reached), with the alias's own
credentials and options. While the block runs, the alias itself points at the new
database: migrations, ``RunPython`` code reaching for ``connections[alias]`` or
``django.db.connection``, and the project's database routers all see it as that alias, and
none of them reaches the configured database. The database is dropped when the block
ends, however it ends (an error, Ctrl-C, or ``SIGTERM``, which is turned into
``KeyboardInterrupt`` while the block runs).
https://www.postgresql.org/docs/current/manage-ag-createdb.html
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import uuid
from collections.abc import Iterator
from types import FrameType
from typing import Any

from django.db import DatabaseError, connections
from django.db.backends.base.base import BaseDatabaseWrapper

from django_safemigrate import djangocompat
from django_safemigrate.exceptions import DatabaseUnavailable, UsageError
from django_safemigrate.execution.run import describe_database

#: Every throwaway database's name starts with this (and a word for what it is for).
PREFIX = "safemigrate_"
#: How its comment starts.
COMMENT = "django_safemigrate throwaway database"


@contextlib.contextmanager
def ephemeral_database(connection: BaseDatabaseWrapper, purpose: str) -> Iterator[str]:
    """Create a new, uniquely named database beside ``connection``'s and point the alias at
    it until the block ends; yields the database's name."""
    name = f"{PREFIX}{purpose}_{uuid.uuid4().hex[:12]}"
    alias = connection.alias
    _create(connection, name)
    try:
        with _sigterm_interrupts():
            wrapper = type(connection)({**connection.settings_dict, "NAME": name}, alias)
            connections[alias] = wrapper
            try:
                yield name
            finally:
                connections[alias] = connection
                wrapper.close()
    finally:
        _drop(connection, name)


def _create(connection: BaseDatabaseWrapper, name: str) -> None:
    try:
        with _maintenance_cursor(connection) as cursor:
            cursor.execute(f'CREATE DATABASE "{name}"')
            # Should the process be killed outright (SIGKILL) before it drops the database,
            # the comment says what it is and that it may be dropped.
            cursor.execute(
                f'COMMENT ON DATABASE "{name}" IS %s',
                [
                    f"{COMMENT} for {connection.settings_dict.get('NAME')}, pid {os.getpid()}; "
                    "safe to drop when that process is gone"
                ],
            )
    except DatabaseError as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "permission denied" in first_line:
            raise UsageError(
                f"Cannot create a throwaway database beside {describe_database(connection)}: "
                f"{first_line}. The check builds the schema in a new database on the same "
                "server; give the role CREATEDB (ALTER ROLE ... CREATEDB), or point --database "
                "at a server where it may create databases. Nothing was changed."
            ) from exc
        raise DatabaseUnavailable(
            f"Cannot create a throwaway database beside {describe_database(connection)}: "
            f"{first_line}. Check that the server is running and reachable, and the "
            "credentials in DATABASES (or DATABASE_URL). Nothing was changed."
        ) from exc


def _drop(connection: BaseDatabaseWrapper, name: str) -> None:
    with _maintenance_cursor(connection) as cursor:
        # Sessions still open on it (a RunPython that opened one of its own) would make
        # DROP DATABASE fail; WITH (FORCE) (PostgreSQL 13) ends them, this works on every
        # version. https://www.postgresql.org/docs/current/sql-dropdatabase.html
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            [name],
        )
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}"')


@contextlib.contextmanager
def _maintenance_cursor(connection: BaseDatabaseWrapper) -> Iterator[Any]:
    # Django's own way to reach the server without the configured database (as the test
    # runner creates test databases): the "postgres" database, or the first other one.
    with djangocompat.nodb_cursor(connection) as cursor:
        yield cursor


@contextlib.contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """``SIGTERM`` raises ``KeyboardInterrupt`` inside the block, so ``finally`` runs."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
