"""Notice a ledger that lost records, instead of adopting the whole history again.

Every run that finishes writes the ledger's size (runs, migration records, steps)
as a high-water mark in two places outside the append-only tables: the one row of
``django_safemigrate_ledgermark``, and a line in the comment on the
``django_migrations`` table. The comment outlives this app's tables: it survives
their rows being deleted with the triggers disabled, the tables being dropped and
created again (``migrate django_safemigrate zero`` and back), and the restore of an
old copy of them alone. Before a run writes anything, it compares the ledger with
the higher of the two marks; a ledger smaller than its mark has lost records, and
the run stops (:class:`LedgerLost`, exit 3) until someone accepts the loss
explicitly (``safemigrate --accept-ledger-loss "why"``), which is itself recorded.

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
_COMMENT_LINE = re.compile(
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
    from django_safemigrate.models import LedgerMark, MigrationRecord, Run, StepRecord

    quote = connection.ops.quote_name
    return {
        "run": quote(Run._meta.db_table),
        "record": quote(MigrationRecord._meta.db_table),
        "step": quote(StepRecord._meta.db_table),
        "mark": quote(LedgerMark._meta.db_table),
        "migrations": MigrationRecorder.Migration._meta.db_table,
    }


def read(connection: BaseDatabaseWrapper) -> Continuity:
    """The ledger's size now and its mark, in one round trip."""
    t = _tables(connection)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT (SELECT count(*) FROM {t["run"]}), (SELECT count(*) FROM {t["record"]}),
                   (SELECT count(*) FROM {t["step"]}),
                   m.runs, m.records, m.steps,
                   obj_description(to_regclass(%s), 'pg_class')
            FROM (SELECT 1) AS one
            LEFT JOIN (SELECT * FROM {t["mark"]} ORDER BY id LIMIT 1) AS m ON true
            """,
            [t["migrations"]],
        )
        row = cursor.fetchone()
    assert row is not None
    found = Size(int(row[0]), int(row[1]), int(row[2]))
    mark = Size(int(row[3] or 0), int(row[4] or 0), int(row[5] or 0))
    return Continuity(found, mark.highest(_from_comment(row[6])))


def _from_comment(comment: str | None) -> Size:
    match = _COMMENT_LINE.search(comment or "")
    if match is None:
        return Size(0, 0, 0)
    return Size(int(match[1]), int(match[2]), int(match[3]))


def check(connection: BaseDatabaseWrapper) -> Continuity:
    """Raise :class:`LedgerLost` when the ledger is smaller than its mark."""
    continuity = read(connection)
    if continuity.lost:
        raise LedgerLost(
            "The migration ledger has lost records: it holds "
            f"{continuity.found.describe()}, but held {continuity.mark.describe()} when its "
            "last run finished (rows deleted with its triggers disabled, its tables dropped "
            "and created again, or an older copy of them restored). Going on would adopt "
            "every applied migration as it is now, so an edit made since would go unnoticed. "
            "Restore the ledger tables from a backup if you can; otherwise accept the loss "
            "explicitly, which is recorded with who, where and why: "
            "'manage.py safemigrate --accept-ledger-loss \"why\"'. Nothing was applied."
        )
    return continuity


def advance(connection: BaseDatabaseWrapper, *, lower: bool = False) -> None:
    """Set the mark to the ledger's size now (never lower, unless ``lower``).

    The comment needs the ownership of ``django_migrations``; a role without it keeps
    the mark in the table only (losing the protection against dropped tables).
    """
    from django.utils import timezone

    t = _tables(connection)
    now = read(connection)
    size = now.found if lower else now.found.highest(now.mark)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {t['mark']} SET runs = %s, records = %s, steps = %s, updated_at = %s",
            [size.runs, size.records, size.steps, timezone.now()],
        )
        if not cursor.rowcount:
            cursor.execute(
                f"INSERT INTO {t['mark']} (runs, records, steps, updated_at) "
                "VALUES (%s, %s, %s, %s)",
                [size.runs, size.records, size.steps, timezone.now()],
            )
    _comment(connection, t["migrations"], size)


def _comment(connection: BaseDatabaseWrapper, table: str, size: Size) -> None:
    from psycopg import sql

    line = f"django_safemigrate ledger: runs={size.runs} records={size.records} steps={size.steps}"
    try:
        with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
            cursor.execute("SELECT obj_description(to_regclass(%s), 'pg_class')", [table])
            row = cursor.fetchone()
            kept = _COMMENT_LINE.sub("", (row[0] if row else None) or "").strip()
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
