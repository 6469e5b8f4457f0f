"""Render migrations' SQL without executing anything.

Django renders an operation's SQL with a schema editor in collect mode
(``schema_editor(collect_sql=True)``, as ``sqlmigrate`` does): ``execute()`` appends to a
list instead of running. An operation is Python, though. A custom operation's
``database_forwards`` may open a cursor on ``schema_editor.connection`` or on
``django.db.connection`` and run statements there, and Django's own editor opens cursors
to read the live schema. Rendered against the deploy's database as it is, such an
operation would run its statements during ``checkmigrations``, ``safemigrate --plan`` or
the judgement before a blocked deploy. Here nothing runs:

1. The schema editor renders through a connection of its own, with no database session:
   it refuses to connect, and every cursor it hands out refuses to execute or fetch.
2. While the analysis renders, every Django connection of the thread refuses as well: a
   connected one has its driver connection replaced with a stand-in that refuses
   everything, one not connected refuses to connect, and an execute wrapper refuses
   statements on cursors made before the rendering began.
3. The live database connection stays inside a read-only transaction
   (``SET TRANSACTION READ ONLY``) with a short ``lock_timeout``: whatever still reaches
   it cannot write, and cannot queue behind a lock.

Each refusal is noted against the operation being rendered, and so is anything that
happened to the read-only transaction; the analysis reports that operation as opaque
(SM404) rather than judging the part of its SQL it saw.

What the editor needs from the live schema (constraint and sequence names) it reads from
the catalogs through the analysis's own channel (:mod:`django_safemigrate.analysis.catalog`),
which can only add facts: live and offline rendering emit the same statements.

These guards keep the rendering from running what operations send through Django's
connections. They do not make arbitrary Python harmless: code that opens a connection of
its own (``psycopg.connect``), or does its work when its module is imported, is out of
their reach, as it is for every other management command.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
from collections.abc import Callable, Iterator
from typing import Any, NoReturn

from django.db import DatabaseError, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.migrations import Migration
from django.db.migrations.state import ProjectState
from django.utils.connection import ConnectionProxy

from django_safemigrate import djangocompat
from django_safemigrate.analysis.catalog import SAVEPOINT, Catalog, CatalogEditor
from django_safemigrate.analysis.database import CATALOG_LOCK_TIMEOUT, read_only_transaction
from django_safemigrate.sql import OperationSQL, render_migration


class ExecutionRefused(DatabaseError):
    """Something tried to reach the database while the analysis was rendering SQL."""


@dataclasses.dataclass(frozen=True)
class Attempt:
    """One refused attempt to reach the database."""

    #: Through what: "the schema editor's connection", "database 'default'".
    where: str
    #: The statement, when there was one.
    statement: str | None = None
    #: What was used, when it was not a statement ("a cursor", "its driver connection").
    means: str = "a cursor"

    def describe(self) -> str:
        if self.statement is not None:
            text = " ".join(str(self.statement).split())
            if len(text) > 120:
                text = text[:117] + "..."
            return f"{text} (through {self.where})"
        return f"{self.means} of {self.where}"


class AttemptLog:
    """Every refusal of one rendering, in order."""

    def __init__(self) -> None:
        self.attempts: list[Attempt] = []

    def refuse(self, attempt: Attempt) -> NoReturn:
        self.attempts.append(attempt)
        raise ExecutionRefused(
            f"The analysis renders SQL without running it; it refused {attempt.describe()}."
        )


class _RefusingCursor:
    """A cursor that refuses to execute or fetch anything; opening and closing it is fine."""

    def __init__(self, log: AttemptLog, where: str) -> None:
        self._log = log
        self._where = where

    def __enter__(self) -> _RefusingCursor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        return None

    def close(self) -> None:
        return None

    def execute(self, sql: Any, params: Any = None) -> NoReturn:
        self._log.refuse(Attempt(self._where, str(sql)))

    def executemany(self, sql: Any, param_list: Any) -> NoReturn:
        self._log.refuse(Attempt(self._where, str(sql)))

    def __iter__(self) -> NoReturn:
        self._log.refuse(Attempt(self._where))

    def __getattr__(self, name: str) -> NoReturn:
        self._log.refuse(Attempt(self._where, means=f"a cursor ({name})"))


class _RefusingDriver:
    """Stands in for a connected wrapper's driver connection while the analysis renders."""

    def __init__(self, log: AttemptLog, where: str) -> None:
        self._log = log
        self._where = where

    def __getattr__(self, name: str) -> NoReturn:
        self._log.refuse(Attempt(self._where, means=f"the driver connection ({name})"))


_RENDERING_CLASSES: dict[type[BaseDatabaseWrapper], type[BaseDatabaseWrapper]] = {}


def _rendering_class(backend: type[BaseDatabaseWrapper]) -> type[BaseDatabaseWrapper]:
    """The backend's wrapper class, made to render without a database session."""
    found = _RENDERING_CLASSES.get(backend)
    if found is None:
        found = _RENDERING_CLASSES[backend] = _make_rendering_class(backend)
    return found


def _make_rendering_class(backend: type[BaseDatabaseWrapper]) -> type[BaseDatabaseWrapper]:

    class RenderingOperations(backend.ops_class):  # type: ignore[name-defined, misc]
        def compose_sql(self, sql: str, params: Any) -> str:
            # Django merges parameters into DDL with a client cursor, which needs a
            # connection; quote them without one (psycopg's quoting, no server).
            from psycopg.sql import quote

            return sql % tuple(quote(p) for p in (params or ()))

    class RenderingSchemaEditor(CatalogEditor, backend.SchemaEditorClass):  # type: ignore[name-defined, misc]
        pass

    class Rendering(backend):  # type: ignore[valid-type, misc]
        ops_class = RenderingOperations
        SchemaEditorClass = RenderingSchemaEditor
        log: AttemptLog
        catalog: Catalog

        def connect(self) -> NoReturn:
            self.log.refuse(Attempt(_EDITOR, means="a new connection"))

        def get_new_connection(self, conn_params: Any) -> NoReturn:
            self.log.refuse(Attempt(_EDITOR, means="a new connection"))

        def cursor(self) -> Any:
            return _RefusingCursor(self.log, _EDITOR)

        def chunked_cursor(self) -> Any:
            return _RefusingCursor(self.log, _EDITOR)

    return Rendering


_EDITOR = "the schema editor's connection"


def _rendering_connection(
    template: BaseDatabaseWrapper, pg_version: int, catalog: Catalog, log: AttemptLog
) -> BaseDatabaseWrapper:
    wrapper: Any = _rendering_class(type(template))({**template.settings_dict}, template.alias)
    djangocompat.set_server_version(wrapper, pg_version * 10000)
    wrapper.log = log
    wrapper.catalog = catalog
    return wrapper  # type: ignore[no-any-return]


@dataclasses.dataclass
class _LiveSession:
    """The read-only transaction the live connection stays in while the analysis renders."""

    driver: Any

    def start(self) -> None:
        self.driver.execute(f"SAVEPOINT {SAVEPOINT}")

    def restart(self) -> None:
        """Open a new read-only transaction after something ended the previous one."""
        self.driver.execute("SET TRANSACTION READ ONLY")
        self.driver.execute("SELECT set_config('lock_timeout', %s, true)", [CATALOG_LOCK_TIMEOUT])
        self.start()

    def disturbed(self) -> str | None:
        """What happened to the transaction since it was opened, if anything; then repair it."""
        from psycopg.pq import TransactionStatus

        status = self.driver.info.transaction_status
        if status == TransactionStatus.INTRANS:
            return None
        if status == TransactionStatus.INERROR:
            self.driver.execute(f"ROLLBACK TO SAVEPOINT {SAVEPOINT}")
            return "a statement on the live connection, which its read-only transaction refused"
        if status == TransactionStatus.IDLE:
            self.restart()
            return (
                "the end of the analysis's read-only transaction on the live connection "
                "(a commit or a rollback)"
            )
        return f"the live connection, left {status.name.lower()}"


class Renderer:
    """Renders migrations for one analysis, inside the guards described above."""

    def __init__(
        self,
        template: BaseDatabaseWrapper,
        connection: BaseDatabaseWrapper,
        log: AttemptLog,
        session: _LiveSession | None,
    ) -> None:
        self.template = template
        #: The connection schema editors are given: it never runs anything.
        self.connection = connection
        self._log = log
        self._session = session

    def render(
        self, migration: Migration, state: ProjectState
    ) -> tuple[list[OperationSQL], ProjectState]:
        return render_migration(migration, state, self.connection, guard=self)

    def mark(self) -> int:
        return len(self._log.attempts)

    def refused_since(self, mark: int) -> tuple[str, ...]:
        found = [attempt.describe() for attempt in self._log.attempts[mark:]]
        if self._session is not None:
            disturbed = self._session.disturbed()
            if disturbed is not None:
                found.append(disturbed)
        return tuple(found)


_ACTIVE: contextvars.ContextVar[Renderer | None] = contextvars.ContextVar(
    "safemigrate_renderer", default=None
)


@contextlib.contextmanager
def rendering(connection: BaseDatabaseWrapper, pg_version: int) -> Iterator[Renderer]:
    """A :class:`Renderer` for ``connection``, with every guard in place until the block ends.

    A connected ``connection`` is the live database: its catalogs are read, inside a
    read-only transaction. One that is not connected (``checkmigrations --offline``, no
    database) renders with Django's default names. Within a rendering, another one for the
    same connection is the same renderer (a walk renders migration after migration).
    """
    if isinstance(connection, ConnectionProxy):  # django.db.connection
        connection = connections[djangocompat.proxied_alias(connection)]
    active = _ACTIVE.get()
    if active is not None:
        if active.template is not connection:
            raise RuntimeError("The analysis renders for one connection at a time.")
        yield active
        return
    log = AttemptLog()
    with contextlib.ExitStack() as stack:
        session = None
        if connection.connection is not None:
            stack.enter_context(read_only_transaction(connection))
            session = _LiveSession(connection.connection)
            session.start()
        catalog = Catalog(session.driver if session is not None else None, connection.introspection)
        renderer = Renderer(
            connection, _rendering_connection(connection, pg_version, catalog, log), log, session
        )
        stack.enter_context(_refusing_connections(log, also=connection))
        token = _ACTIVE.set(renderer)
        stack.callback(_ACTIVE.reset, token)
        yield renderer


@contextlib.contextmanager
def _refusing_connections(log: AttemptLog, *, also: BaseDatabaseWrapper) -> Iterator[None]:
    """Make every Django connection of this thread refuse, until the block ends.

    ``connections.all()`` creates the wrappers of aliases nobody used yet, so that an
    operation reaching for ``connections["other"]`` gets a guarded one too.
    """
    wrappers = list(connections.all())
    if not any(wrapper is also for wrapper in wrappers):
        wrappers.append(also)
    restore: list[Callable[[], None]] = []
    try:
        for wrapper in wrappers:
            restore.append(_refuse_on(wrapper, log))
        yield
    finally:
        for undo in reversed(restore):
            undo()


def _refuse_on(wrapper: BaseDatabaseWrapper, log: AttemptLog) -> Callable[[], None]:
    where = f"database {wrapper.alias!r}"
    target: Any = wrapper

    def refuse_statement(
        execute: Any, sql: Any, params: Any, many: bool, context: dict[str, Any]
    ) -> NoReturn:
        log.refuse(Attempt(where, str(sql)))

    def refuse_connect() -> NoReturn:
        log.refuse(Attempt(where, means="a new connection"))

    driver = target.connection
    flags = (target.closed_in_transaction, target.needs_rollback)
    if driver is not None:
        target.connection = _RefusingDriver(log, where)
    else:
        target.connect = refuse_connect
    target.execute_wrappers.append(refuse_statement)

    def undo() -> None:
        with contextlib.suppress(ValueError):
            target.execute_wrappers.remove(refuse_statement)
        if driver is not None:
            target.connection = driver
            # A close() attempted through the stand-in marks the wrapper as closed in its
            # transaction; the real connection was never touched.
            target.closed_in_transaction, target.needs_rollback = flags
        else:
            vars(target).pop("connect", None)

    return undo
