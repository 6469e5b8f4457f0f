"""What a step that runs outside a transaction has committed, for its failure message.

A ``RunPython`` of an ``atomic = False`` migration runs in autocommit: every
write commits as soon as it runs, so when the function raises, what it wrote
before stays. To say so concretely, the writes that committed are counted while
such a step runs: each successful write registers a ``transaction.on_commit``
callback, which Django runs at once in autocommit, runs when an ``atomic`` block
the function opened commits, and discards when that block (or a savepoint) is
rolled back. The tally therefore holds exactly what reached the database for good.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
from collections.abc import Callable, Iterator
from typing import Any

from django.db import transaction
from django.db.backends.base.base import BaseDatabaseWrapper

#: Row-writing statements, by the parse-tree class pglast gives them.
_VERBS = {
    "InsertStmt": "inserted into",
    "UpdateStmt": "updated in",
    "DeleteStmt": "deleted from",
    "MergeStmt": "merged into",
}
#: Statements that change nothing (reads, settings, transaction control).
_READS = {
    "SelectStmt",
    "VariableSetStmt",
    "VariableShowStmt",
    "TransactionStmt",
    "ExplainStmt",
    "DeclareCursorStmt",
    "FetchStmt",
    "ClosePortalStmt",
    "LockStmt",
}


@dataclasses.dataclass(frozen=True)
class _Write:
    #: "inserted into", "updated in", …; "" for another kind of change (DDL, COPY, CALL).
    verb: str
    #: The table written (``None`` when it cannot be told), or the statement's text.
    target: str | None


class CommittedWrites:
    """A tally of committed writes: rows per (verb, table), and other changes."""

    def __init__(self) -> None:
        self._rows: dict[tuple[str, str | None], int] = {}
        self._others: list[str] = []

    def add(self, write: _Write, rows: int) -> None:
        if write.verb:
            key = (write.verb, write.target)
            self._rows[key] = self._rows.get(key, 0) + max(rows, 0)
        else:
            self._others.append(write.target or "a statement")

    def __bool__(self) -> bool:
        return bool(self._rows or self._others)

    def describe(self) -> str:
        """``"3 rows inserted into shop_item; 1 other statement (CREATE TABLE …)"``."""
        parts = []
        for (verb, table), rows in self._rows.items():
            where = f" {verb} {table}" if table else f" {verb.split()[0]}"
            parts.append(f"{rows} row{'s' if rows != 1 else ''}{where}")
        if self._others:
            shown = "; ".join(self._others[:3]) + ("; …" if len(self._others) > 3 else "")
            count = len(self._others)
            parts.append(f"{count} other statement{'s' if count != 1 else ''} ({shown})")
        return "; ".join(parts)


def _write_of(sql: str, params: Any) -> _Write | None:
    """What ``sql`` writes, or ``None`` for a statement that changes nothing."""
    from pglast import parse_sql
    from pglast.parser import ParseError

    text = str(sql)
    if params is not None:
        # Django's placeholders, made parseable (the text is only read for its kind
        # and table; a placeholder inside a literal changes nothing that matters here).
        text = text.replace("%%", "\0").replace("%s", "$1").replace("\0", "%")
    try:
        trees = [raw.stmt for raw in parse_sql(text)]
    except ParseError:
        return _Write("", _shorten(text))
    written = [t for t in trees if type(t).__name__ not in _READS]
    if not written:
        return None
    tree = written[0]
    verb = _VERBS.get(type(tree).__name__)
    if verb is None or len(written) > 1:
        return _Write("", _shorten(text))
    relation = getattr(tree, "relation", None)
    table = getattr(relation, "relname", None)
    return _Write(verb, str(table) if table else None)


def _shorten(sql: str, limit: int = 60) -> str:
    text = " ".join(sql.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


@contextlib.contextmanager
def watch_committed(connection: BaseDatabaseWrapper) -> Iterator[CommittedWrites]:
    """Count the writes made on ``connection`` inside the block that commit."""
    tally = CommittedWrites()

    def wrapper(
        execute: Callable[..., Any], sql: Any, params: Any, many: bool, context: Any
    ) -> Any:
        result = execute(sql, params, many, context)
        write = _write_of(sql, params)
        if write is not None:
            rows = getattr(context.get("cursor"), "rowcount", -1)
            transaction.on_commit(
                functools.partial(tally.add, write, rows if isinstance(rows, int) else -1),
                using=connection.alias,
            )
        return result

    with connection.execute_wrapper(wrapper):
        yield tally
