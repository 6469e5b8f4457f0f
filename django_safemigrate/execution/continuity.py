"""Notice a ledger that lost records, instead of adopting the whole history again.

Every run that finishes writes the size of its schema's history in the ledger (the runs
of that schema, their migration records and steps) as a high-water mark in two places
outside the append-only tables: that schema's row of ``django_safemigrate_schemamark``,
and a line in the comment on the schema's ``django_migrations`` table. The comment
outlives this app's tables: it survives their rows being deleted with the triggers
disabled, the tables being dropped and created again (``migrate django_safemigrate
zero`` and back), and the restore of an old copy of them alone. Before a run writes
anything, it compares its schema's history with the higher of the two marks; a history
smaller than its mark has lost records, and the run stops (:class:`LedgerLost`, exit 3)
until someone accepts the loss explicitly (``safemigrate --accept-ledger-loss "why"``),
which is itself recorded.

Per schema, so that the work stays that of one schema's history however many tenants a
schema-per-tenant database holds (the runs are found by the index on ``Run.schema``), and
a tenant whose history lost records stops alone. Releases before migration 0011 kept one
mark of the whole ledger (the row of ``django_safemigrate_ledgermark``, and a comment line
without a schema; a runner of such a release still writes them during a rolling upgrade):
a schema with no mark of its own is checked against that one, counting the whole ledger,
until its first run writes its own.

A full restore of an older database is not a loss: its ``django_migrations``, its
comment and its ledger are of the same moment, and agree.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from django.db import DatabaseError, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.migrations.recorder import MigrationRecorder

from django_safemigrate.exceptions import Blocked

#: The line this app keeps in the comment on ``django_migrations``; other text stays.
#: ``schema=``: the schema whose history it counts (a table copied with its comment to
#: another schema brings a line that is not that schema's, and is not read there).
_COMMENT_LINE = re.compile(
    r"^django_safemigrate ledger: runs=(\d+) records=(\d+) steps=(\d+) schema=(\S+)$",
    re.MULTILINE,
)
#: The line of releases before 0011: the size of the whole ledger.
_WHOLE_LEDGER_LINE = re.compile(
    r"^django_safemigrate ledger: runs=(\d+) records=(\d+) steps=(\d+)$", re.MULTILINE
)


class LedgerLost(Blocked):
    """The ledger holds fewer records than it did when its last run finished."""


@dataclasses.dataclass(frozen=True)
class Size:
    runs: int
    records: int
    steps: int

    def below(self, other: Size) -> bool:
        return self.runs < other.runs or self.records < other.records or self.steps < other.steps

    def highest(self, other: Size) -> Size:
        return Size(
            max(self.runs, other.runs),
            max(self.records, other.records),
            max(self.steps, other.steps),
        )

    def describe(self) -> str:
        return f"{self.runs} runs, {self.records} migration records, {self.steps} steps"


@dataclasses.dataclass(frozen=True)
class Continuity:
    found: Size
    mark: Size

    @property
    def lost(self) -> bool:
        return self.found.below(self.mark)


def _tables(connection: BaseDatabaseWrapper) -> dict[str, str]:
    from django_safemigrate.models import (
        LedgerMark,
        MigrationRecord,
        Run,
        SchemaMark,
        StepRecord,
    )

    quote = connection.ops.quote_name
    return {
        "run": quote(Run._meta.db_table),
        "record": quote(MigrationRecord._meta.db_table),
        "step": quote(StepRecord._meta.db_table),
        "mark": quote(SchemaMark._meta.db_table),
        "whole": quote(LedgerMark._meta.db_table),
        "migrations": MigrationRecorder.Migration._meta.db_table,
    }


@dataclasses.dataclass(frozen=True)
class _Reading:
    #: The schema's history in the ledger now.
    found: Size
    #: The schema's own mark (its row, its comment line), if it has one.
    mark: Size | None
    #: The mark of the whole ledger kept before 0011 (the row of ``LedgerMark``, the
    #: comment line without a schema), if there is one.
    whole: Size | None
    #: The comment on ``django_migrations`` as read.
    comment: str = ""


def _read(connection: BaseDatabaseWrapper, schema: str) -> _Reading:
    """The schema's history and the marks, in one round trip."""
    t = _tables(connection)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH runs AS (SELECT id FROM {t["run"]} WHERE schema = %s)
            SELECT (SELECT count(*) FROM runs),
                   (SELECT count(*) FROM {t["record"]} WHERE run_id IN (SELECT id FROM runs)),
                   (SELECT count(*) FROM {t["step"]} WHERE run_id IN (SELECT id FROM runs)),
                   m.runs, m.records, m.steps, w.runs, w.records, w.steps,
                   obj_description(to_regclass(%s), 'pg_class')
            FROM (SELECT 1) AS one
            LEFT JOIN (SELECT * FROM {t["mark"]} WHERE schema = %s) AS m ON true
            LEFT JOIN (SELECT * FROM {t["whole"]} ORDER BY id LIMIT 1) AS w ON true
            """,
            [schema, t["migrations"], schema],
        )
        row = cursor.fetchone()
    assert row is not None
    comment = row[9] or ""
    own = _comment_size(comment, schema)
    whole = _whole_ledger_size(comment)
    mark = None if row[3] is None else Size(int(row[3]), int(row[4]), int(row[5]))
    if own is not None:
        mark = own if mark is None else mark.highest(own)
    whole_row = None if row[6] is None else Size(int(row[6]), int(row[7]), int(row[8]))
    if whole_row is not None:
        whole = whole_row if whole is None else whole.highest(whole_row)
    return _Reading(Size(int(row[0]), int(row[1]), int(row[2])), mark, whole, comment)


def _whole_ledger(connection: BaseDatabaseWrapper) -> Size:
    t = _tables(connection)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT (SELECT count(*) FROM {t['run']}), (SELECT count(*) FROM {t['record']}), "
            f"(SELECT count(*) FROM {t['step']})"
        )
        row = cursor.fetchone()
    assert row is not None
    return Size(int(row[0]), int(row[1]), int(row[2]))


def read(connection: BaseDatabaseWrapper, schema: str) -> Continuity:
    """What the ledger holds of ``schema``'s history, and what it held at the mark.

    A schema without a mark of its own, where a mark of the whole ledger from before
    0011 exists, is compared as a whole: the whole ledger against that mark.
    """
    reading = _read(connection, schema)
    if reading.mark is not None:
        return Continuity(reading.found, reading.mark)
    if reading.whole is not None:
        return Continuity(_whole_ledger(connection), reading.whole)
    return Continuity(reading.found, Size(0, 0, 0))


def _comment_size(comment: str, schema: str) -> Size | None:
    for match in _COMMENT_LINE.finditer(comment):
        if match[4] == schema:
            return Size(int(match[1]), int(match[2]), int(match[3]))
    return None


def _whole_ledger_size(comment: str) -> Size | None:
    match = _WHOLE_LEDGER_LINE.search(comment)
    if match is None:
        return None
    return Size(int(match[1]), int(match[2]), int(match[3]))


def check(connection: BaseDatabaseWrapper, schema: str) -> Continuity:
    """Raise :class:`LedgerLost` when the schema's history is smaller than its mark."""
    continuity = read(connection, schema)
    if continuity.lost:
        where = "" if schema == "public" else f" for schema '{schema}'"
        raise LedgerLost(
            f"The migration ledger has lost records{where}: it holds "
            f"{continuity.found.describe()}, but held {continuity.mark.describe()} when its "
            "last run finished (rows deleted with its triggers disabled, its tables dropped "
            "and created again, or an older copy of them restored). Going on would adopt "
            "every applied migration as it is now, so an edit made since would go unnoticed. "
            "Restore the ledger tables from a backup if you can; otherwise accept the loss "
            "explicitly, which is recorded with who, where and why: "
            "'manage.py safemigrate --accept-ledger-loss \"why\"'. Nothing was applied."
        )
    return continuity


def advance(connection: BaseDatabaseWrapper, schema: str, *, lower: bool = False) -> None:
    """Set the schema's mark to its history's size now (never lower, unless ``lower``).

    The comment needs the ownership of ``django_migrations``; a role without it keeps
    the mark in the table only (losing the protection against dropped tables).
    """
    from django.utils import timezone

    t = _tables(connection)
    reading = _read(connection, schema)
    size = reading.found
    if not lower and reading.mark is not None:
        size = size.highest(reading.mark)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {t['mark']} (runs, records, steps, updated_at, schema) "
            "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (schema) DO UPDATE SET runs = "
            "excluded.runs, records = excluded.records, steps = excluded.steps, "
            "updated_at = excluded.updated_at",
            [size.runs, size.records, size.steps, timezone.now(), schema],
        )
    _comment(connection, t["migrations"], size, schema, reading.comment)


def _comment(
    connection: BaseDatabaseWrapper, table: str, size: Size, schema: str, comment: str
) -> None:
    """Write the schema's line into the comment on ``table``, which read ``comment`` (under
    the schema's lock, the only writer of that line)."""
    from psycopg import sql

    line = (
        f"django_safemigrate ledger: runs={size.runs} records={size.records} "
        f"steps={size.steps} schema={schema}"
    )
    try:
        with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
            # This schema's line and the whole ledger's (before 0011) are replaced; the
            # project's own text stays.
            kept = "\n".join(
                text
                for text in comment.splitlines()
                if not _WHOLE_LEDGER_LINE.fullmatch(text)
                and not (
                    (match := _COMMENT_LINE.fullmatch(text)) is not None and match[4] == schema
                )
            ).strip()
            text = f"{kept}\n{line}" if kept else line
            raw: Any = connection.connection
            # COMMENT takes no bind parameters: the literal is quoted by psycopg.
            cursor.execute(
                sql.SQL("COMMENT ON TABLE {} IS {}")
                .format(sql.Identifier(table), sql.Literal(text))
                .as_string(raw)
            )
    except DatabaseError:
        pass  # not the table's owner: the row in the mark table is the only mark
