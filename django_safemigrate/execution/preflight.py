"""Pre-flight: look for old transactions on the tables a strong-lock step will lock.

A statement that queues for ACCESS EXCLUSIVE behind one long transaction (even
one idle in transaction) makes every later query on that table queue behind
it. Before such a step, the runner looks in ``pg_locks`` and
``pg_stat_activity`` for transactions older than a threshold that hold or wait
for locks on the same tables, and by policy waits for them (bounded), warns,
or stops before touching anything.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

from django_safemigrate.enums import LockMode


@dataclasses.dataclass(frozen=True)
class Blocker:
    pid: int
    table: str
    mode: str
    granted: bool
    age: float
    application: str
    state: str
    query: str

    def describe(self) -> str:
        holds = "holds" if self.granted else "waits for"
        app = f"'{self.application}'" if self.application else "no application_name"
        return (
            f"pid {self.pid} ({app}, {self.state or 'unknown state'}, transaction open "
            f"{self.age:.0f}s) {holds} {self.mode} on {self.table}: {self.query!r}"
        )


def relation_ref(name: str, schema: str | None = None) -> str:
    """``name`` (in ``schema``, or as the search path finds it) quoted for ``to_regclass``.

    The pre-flight looks for locks on these very relations, by OID: a table of the same
    name in another schema (another tenant's) is another table.
    """

    def quote(part: str) -> str:
        return '"' + part.replace('"', '""') + '"'

    return f"{quote(schema)}.{quote(name)}" if schema else quote(name)


def strong_lock_tables(trees: Iterable[Any]) -> list[str]:
    """Tables that the statements lock in a mode that blocks writes (or reads), as
    :func:`relation_ref` references."""
    from pglast import ast

    from django_safemigrate.execution.locks import statement_lock

    tables: list[str] = []
    for node in trees:
        lock = statement_lock(node)
        if lock is None or not lock.blocks_writes or lock is LockMode.SHARE_UPDATE_EXCLUSIVE:
            continue
        relation = getattr(node, "relation", None)
        if isinstance(relation, ast.RangeVar) and relation.relname:
            tables.append(relation_ref(str(relation.relname), relation.schemaname or None))
    return list(dict.fromkeys(tables))


def find_blockers(connection: Any, tables: list[str], min_age: float) -> list[Blocker]:
    """Old transactions that hold or wait for locks on ``tables`` (:func:`relation_ref`
    references, resolved on ``connection``'s search path)."""
    if not tables:
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT a.pid, l.relation::regclass::text, l.mode, l.granted,
                   EXTRACT(EPOCH FROM now() - a.xact_start)::float,
                   coalesce(a.application_name, ''), coalesce(a.state, ''),
                   left(coalesce(a.query, ''), 200)
            FROM pg_locks l
            JOIN pg_stat_activity a ON a.pid = l.pid
            WHERE l.relation = ANY(ARRAY(SELECT to_regclass(t)::oid FROM unnest(%s::text[]) t))
              AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
              AND a.pid <> pg_backend_pid()
              AND a.datname = current_database()
              AND a.xact_start < now() - make_interval(secs => %s)
            ORDER BY a.xact_start
            """,
            [tables, min_age],
        )
        return [Blocker(*row) for row in cursor.fetchall()]


class OldTransactionWatch:
    """Skips pre-flight queries that cannot find anything.

    One query notes when the oldest other transaction started. Until
    ``min_age`` seconds have passed since that query, only a transaction that was
    already open then can have become old, so when the oldest one is not old
    enough yet, no pre-flight query is needed.
    """

    def __init__(self, connection: Any, min_age: float) -> None:
        self.connection = connection
        self.min_age = min_age
        self._checked_at: float | None = None
        self._oldest_age: float | None = None

    def may_have_old_transactions(self) -> bool:
        import time

        now = time.monotonic()
        if self._checked_at is None or now - self._checked_at >= self.min_age:
            with self.connection.cursor() as cursor:
                cursor.execute(
                    "SELECT EXTRACT(EPOCH FROM now() - min(xact_start))::float "
                    "FROM pg_stat_activity WHERE datname = current_database() "
                    "AND pid <> pg_backend_pid() AND xact_start IS NOT NULL"
                )
                row = cursor.fetchone()
            self._checked_at = now
            self._oldest_age = row[0] if row else None
        if self._oldest_age is None:
            return False
        return self._oldest_age + (now - self._checked_at) >= self.min_age
