"""A fleet of tenant schemas in one database (django-tenants): which schemas have work,
which of them a shard takes, and how each schema's run ended.

Each schema is still migrated by django-tenants' own per-schema run, which runs
``safemigrate`` there (``TENANT_BASE_MIGRATE_COMMAND``): its lock, its ledger rows, its
gate. This module only chooses the schemas and reads the results.
"""

from __future__ import annotations

import dataclasses
import zlib
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.migrations.loader import MigrationLoader

from django_safemigrate.exceptions import UsageError

#: Schemas per statement of the fleet query (a statement names each schema's table).
_CHUNK = 500


def expected_migrations(loader: MigrationLoader) -> list[str]:
    """``app.name`` of every migration a fully migrated schema has recorded: the graph's
    nodes (a squashed migration stands for the ones it replaces).

    Django's ``migrate`` records every migration of its plan in each schema, also those
    a router makes no-ops there, so every schema of a fleet records the same set.
    """
    return sorted(f"{app}.{name}" for app, name in loader.graph.nodes)


def schemas_with_work(
    connection: BaseDatabaseWrapper, schemas: Sequence[str], expected: Sequence[str]
) -> list[str]:
    """The ``schemas`` (in their order) that have not recorded every ``expected``
    migration, from two reads for the whole fleet (:func:`recorded_counts`).

    A schema that recorded the migrations a squashed one replaces but not the squashed one
    itself is counted as having work: its run finds nothing to apply and records the
    squash, as Django does.
    """
    counts = recorded_counts(connection, schemas, expected)
    return [schema for schema in schemas if counts[schema] < len(set(expected))]


def recorded_counts(
    connection: BaseDatabaseWrapper, schemas: Sequence[str], expected: Sequence[str]
) -> dict[str, int]:
    """Per schema, how many of the ``expected`` migrations its ``django_migrations``
    records (0 without the table): one catalog read, then one statement per
    :data:`_CHUNK` schemas. Only reads; nothing is locked beyond what a SELECT takes."""
    counts = dict.fromkeys(schemas, 0)
    if not schemas:
        return counts
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT s FROM unnest(%s::text[]) AS s "
            "WHERE to_regclass(format('%%I.django_migrations', s)) IS NOT NULL",
            [list(schemas)],
        )
        with_table = [row[0] for row in cursor.fetchall()]
        for start in range(0, len(with_table), _CHUNK):
            chunk = with_table[start : start + _CHUNK]
            branches = " UNION ALL ".join(
                "SELECT %s, count(DISTINCT m.app || '.' || m.name) "
                f"FROM {connection.ops.quote_name(schema)}.django_migrations m "
                "WHERE m.app || '.' || m.name = ANY(%s::text[])"
                for schema in chunk
            )
            params: list[Any] = []
            for schema in chunk:
                params += [schema, list(expected)]
            cursor.execute(branches, params)
            counts.update((name, int(count)) for name, count in cursor.fetchall())
    return counts


def parse_shard(value: str) -> tuple[int, int]:
    """``INDEX/COUNT`` (0-based index) as a pair; :class:`UsageError` when it is not one."""
    index_text, _, count_text = value.partition("/")
    try:
        index, count = int(index_text), int(count_text)
    except ValueError:
        index, count = -1, 0
    if count < 1 or not 0 <= index < count:
        raise UsageError(
            f"--shard {value!r} is not INDEX/COUNT with 0 <= INDEX < COUNT (for example 0/4 "
            "for the first of four shards; a Kubernetes Indexed Job passes its completion "
            "index as $JOB_COMPLETION_INDEX). Nothing was read or changed."
        )
    return index, count


def shard_of(schema: str, count: int) -> int:
    """The shard that migrates ``schema``: from its name alone, so a schema stays on
    its shard whatever tenants are added or removed, and every pod agrees."""
    return zlib.crc32(schema.encode()) % count


def in_shard(schemas: Iterable[str], index: int, count: int) -> list[str]:
    return [schema for schema in schemas if shard_of(schema, count) == index]


@dataclasses.dataclass(frozen=True)
class LedgerRun:
    """The last run the ledger holds for one schema since a moment."""

    outcome: str
    exit_code: int | None
    message: str
    finished_at: datetime | None = None


def last_runs(
    connection: BaseDatabaseWrapper, schemas: Sequence[str], since: datetime | None = None
) -> dict[str, LedgerRun]:
    """Per schema, the last ledger run (started at or after ``since``): one query."""
    from django_safemigrate.models import Run

    runs = Run.objects.using(connection.alias).filter(schema__in=list(schemas))
    if since is not None:
        runs = runs.filter(started_at__gte=since)
    rows = (
        runs.order_by("schema", "-id")
        .distinct("schema")
        .values_list("schema", "outcome", "exit_code", "message", "finished_at")
    )
    return {
        schema: LedgerRun(outcome, code, message, finished)
        for schema, outcome, code, message, finished in rows
    }
