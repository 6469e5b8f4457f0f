"""The SQL a migration will really run, per operation, parsed by PostgreSQL's parser.

Django renders an operation's SQL for a connection without executing it
(``schema_editor(collect_sql=True)``, as ``sqlmigrate`` does). That SQL comes
from the configured backend, so a backend that rewrites DDL
(django-pg-zero-downtime-migrations) is judged by what it emits. Statements
that an operation queues for the end of the migration (``deferred_sql``:
indexes and foreign keys of new tables, for example) are attributed back to the
operation that queued them.

Every statement, and every statement inside ``RunSQL``, is parsed with pglast,
which wraps PostgreSQL's own parser; rules judge parse trees, never text.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.migrations import Migration
from django.db.migrations.operations.base import Operation
from django.db.migrations.state import ProjectState


@dataclasses.dataclass(frozen=True)
class Statement:
    """One SQL statement and its parse tree (``None`` when PostgreSQL cannot parse it)."""

    sql: str
    tree: Any | None
    error: str | None = None
    #: True when the statement came from ``RunSQL`` (written by hand) rather than
    #: from the schema editor.
    handwritten: bool = False


@dataclasses.dataclass(frozen=True)
class OperationSQL:
    """What one operation will run on the database."""

    index: int
    operation: Operation
    statements: tuple[Statement, ...]
    #: ``False`` for operations that run Python (``RunPython``): no SQL to show.
    reduces_to_sql: bool = True
    #: Why the SQL could not be rendered (for example, it needs the live schema).
    render_error: str | None = None
    #: The project state just before this operation (``None`` for ``RunPython``).
    from_state: ProjectState | None = dataclasses.field(default=None, compare=False, repr=False)


def parse(sql: str, *, handwritten: bool = False) -> list[Statement]:
    """Split ``sql`` into statements with their parse trees.

    SQL that PostgreSQL cannot parse becomes one statement with ``tree=None`` and
    the parser's message, so a rule can report it instead of the analysis crashing.
    """
    from pglast import parse_sql
    from pglast.parser import ParseError

    text = sql.strip()
    if not text:
        return []
    try:
        raw = parse_sql(text)
    except ParseError as exc:
        return [Statement(text, None, str(exc), handwritten)]
    statements = []
    encoded = text.encode()
    for raw_stmt in raw:
        start = raw_stmt.stmt_location or 0
        length = raw_stmt.stmt_len or (len(encoded) - start)
        piece = encoded[start : start + length].decode(errors="replace").strip()
        statements.append(Statement(piece, raw_stmt.stmt, None, handwritten))
    return statements


def _runsql_statements(operation: Any) -> list[Statement]:
    """The forward SQL of a ``RunSQL``, which may be a string, a list, or (sql, params) pairs.

    Parameters are merged in as SQL literals (as Django's PostgreSQL schema editor
    does before executing), so parameterised statements parse like the real ones.
    """
    from psycopg.sql import quote

    sqls = operation.sql
    if isinstance(sqls, str):
        sqls = [sqls]
    statements: list[Statement] = []
    for item in sqls:
        if isinstance(item, list | tuple):
            text, params = item[0], item[1] if len(item) > 1 else None
        else:
            text, params = item, None
        if text is None:
            continue
        text = str(text)
        if params:
            try:
                if isinstance(params, dict):
                    text = text % {k: quote(v) for k, v in params.items()}
                else:
                    text = text % tuple(quote(v) for v in params)
            except (TypeError, ValueError, KeyError):
                pass  # leave the placeholders; the parser will say what is wrong
        statements.extend(parse(text, handwritten=True))
    return statements


def render_migration(
    migration: Migration,
    state: ProjectState,
    connection: BaseDatabaseWrapper,
) -> tuple[list[OperationSQL], ProjectState]:
    """Render ``migration``'s SQL operation by operation, starting from ``state``.

    Returns the per-operation SQL and the state after the migration (``state``
    is advanced in place, like Django's executor does, so a caller walking a
    whole plan renders each model once instead of once per migration).
    """
    from django.db.migrations.operations.special import RunSQL, SeparateDatabaseAndState

    results: list[OperationSQL] = []
    owners: dict[int, int] = {}  # id(deferred statement) -> index of the operation
    with connection.schema_editor(collect_sql=True, atomic=False) as editor:
        for index, operation in enumerate(migration.operations):
            if not operation.reduces_to_sql:
                operation.state_forwards(migration.app_label, state)
                results.append(OperationSQL(index, operation, (), reduces_to_sql=False))
                continue
            before = len(editor.collected_sql)
            old_state = state.clone()
            operation.state_forwards(migration.app_label, state)
            error = None
            try:
                if isinstance(operation, RunSQL):
                    # Parse what the author wrote: Django would only split it on
                    # semicolons, which breaks on dollar-quoted bodies.
                    statements = _runsql_statements(operation)
                elif isinstance(operation, SeparateDatabaseAndState):
                    statements = _database_side(migration.app_label, operation, editor, old_state)
                else:
                    operation.database_forwards(migration.app_label, editor, old_state, state)
                    statements = []
                    for text in editor.collected_sql[before:]:
                        statements.extend(parse(text))
            except Exception as exc:  # one operation must not stop the analysis
                statements = []
                error = _render_error(exc)
            del editor.collected_sql[before:]
            for deferred in editor.deferred_sql:
                owners.setdefault(id(deferred), index)
            results.append(
                OperationSQL(index, operation, tuple(statements), True, error, old_state)
            )
        # Deferred statements run when the schema editor closes; give each back to
        # the operation that queued it. They go through the editor's own execute(),
        # as on exit, because a backend may queue objects that only it can render
        # (django-pg-zero-downtime-migrations queues lock-aware statement objects).
        deferred_by_owner: dict[int, list[Statement]] = {}
        for deferred in editor.deferred_sql:
            owner = owners.get(id(deferred), len(results) - 1)
            before = len(editor.collected_sql)
            try:
                editor.execute(deferred, None)
            except Exception:  # an unrenderable deferred statement must not stop the analysis
                continue
            for text in editor.collected_sql[before:]:
                deferred_by_owner.setdefault(owner, []).extend(parse(text))
            del editor.collected_sql[before:]
        editor.deferred_sql = []
    for owner, extra in deferred_by_owner.items():
        current = results[owner]
        results[owner] = dataclasses.replace(current, statements=current.statements + tuple(extra))
    return results, state


def _database_side(
    app_label: str, operation: Any, editor: Any, from_state: ProjectState
) -> list[Statement]:
    """The SQL of a ``SeparateDatabaseAndState``'s database operations.

    Mirrors its ``database_forwards`` but never runs Python: a ``RunPython`` on the
    database side is a data migration, not something to execute while analysing.
    """
    from django.db.migrations.operations.special import RunSQL

    statements: list[Statement] = []
    state = from_state.clone()
    for database_operation in operation.database_operations:
        to_state = state.clone()
        database_operation.state_forwards(app_label, to_state)
        if isinstance(database_operation, RunSQL):
            statements.extend(_runsql_statements(database_operation))
        elif database_operation.reduces_to_sql:
            before = len(editor.collected_sql)
            database_operation.database_forwards(app_label, editor, state, to_state)
            for text in editor.collected_sql[before:]:
                statements.extend(parse(text))
        state = to_state
    return statements


def _render_error(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return (
        f"The SQL of this operation could not be rendered ({type(exc).__name__}: {text}); "
        "it depends on the live schema. Judged from the operation alone."
    )
