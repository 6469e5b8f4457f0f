"""A fleet of tenant schemas in one database (django-tenants): which schemas have work,
which of them a shard takes, how each schema's run ended, and where each schema stands
(``safemigrate_schemas --status`` and the admin's "Tenant schemas" page).

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

from django.db import DatabaseError, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.migrations.loader import MigrationLoader

from django_safemigrate.enums import RunOutcome
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
    #: The ledger row (``Run``), for a link to it.
    pk: int | None = None

    @property
    def headline(self) -> str:
        """The first line of its message ("" without one)."""
        lines = self.message.strip().splitlines()
        return lines[0] if lines else ""


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
        .values_list("schema", "outcome", "exit_code", "message", "finished_at", "id")
    )
    return {
        schema: LedgerRun(outcome, code, message, finished, pk)
        for schema, outcome, code, message, finished, pk in rows
    }


# -- where each schema stands ----------------------------------------------------------

#: Outcomes of a run that ended well: a schema still missing migrations after one of
#: them is ``pending`` (they were added since), not stuck.
_SUCCEEDED = frozenset(
    o.value
    for o in (
        RunOutcome.APPLIED,
        RunOutcome.UNAPPLIED,
        RunOutcome.NOTHING_TO_DO,
        RunOutcome.PLANNED,
    )
)


@dataclasses.dataclass(frozen=True)
class SchemaState:
    """Where one schema of a fleet stands."""

    schema: str
    #: ``up_to_date`` (it recorded every migration); ``pending`` (it lacks some and its
    #: last run, if any, ended well); or, when it lacks some, how its last run ended
    #: (``failed``, ``blocked``, ``lock_timeout``, ``interrupted``, ``running``).
    state: str
    #: How many migrations it has not recorded.
    missing: int
    #: Its last run in the ledger, however it ended (``None``: never run governed).
    run: LedgerRun | None


def fleet_states(
    connection: BaseDatabaseWrapper, schemas: Sequence[str], expected: Sequence[str]
) -> list[SchemaState]:
    """Each of ``schemas`` (in their order) against the ``expected`` migrations
    (:func:`expected_migrations`): two reads of ``django_migrations`` for the whole fleet
    (:func:`recorded_counts`) and one of the ledger (:func:`last_runs`), whatever the
    number of schemas. Only reads.

    Without the ledger's tables (no governed run yet), the states come from
    ``django_migrations`` alone: ``up_to_date`` or ``pending``.
    """
    counts = recorded_counts(connection, schemas, expected)
    try:
        # A savepoint: a missing table must not break a transaction the caller holds (a
        # request under ATOMIC_REQUESTS).
        with transaction.atomic(using=connection.alias):
            runs = last_runs(connection, schemas)
    except DatabaseError:
        runs = {}  # no ledger yet: nothing has run governed
    states = []
    for schema in schemas:
        missing = len(expected) - counts[schema]
        run = runs.get(schema)
        if missing <= 0:
            state = "up_to_date"
        elif run is not None and run.outcome not in _SUCCEEDED:
            state = run.outcome
        else:
            state = "pending"
        states.append(SchemaState(schema, state, max(missing, 0), run))
    return states


def state_counts(states: Iterable[SchemaState]) -> dict[str, int]:
    """How many schemas are in each state, in the order the states first appear."""
    counts: dict[str, int] = {}
    for item in states:
        counts[item.state] = counts.get(item.state, 0) + 1
    return counts


def fleet_summary(
    states: Sequence[SchemaState], database: str, shard: tuple[int, int] | None = None
) -> str:
    """The fleet in one line: ``1001 schemas (database 'default'): up to date 998,
    failed 2, pending 1``."""
    where = f", shard {shard[0]}/{shard[1]}" if shard else ""
    return f"{len(states)} schemas (database '{database}'{where}): " + ", ".join(
        f"{state.replace('_', ' ')} {n}" for state, n in state_counts(states).items()
    )


def fleet_unavailable(connection: BaseDatabaseWrapper) -> str | None:
    """Why ``connection``'s database has no fleet of tenant schemas to show, in a sentence;
    ``None`` when it has one (django-tenants installed, its backend, one tenant type)."""
    from django.apps import apps

    if not apps.is_installed("django_tenants"):
        return (
            "This project does not use django-tenants (django_tenants is not in "
            "INSTALLED_APPS), so it has no tenant schemas: its runs are listed with the "
            "other runs."
        )
    if not hasattr(connection, "set_schema_to_public"):
        return (
            f"The database {connection.alias!r} does not use django-tenants' backend "
            "(ENGINE 'django_tenants.postgresql_backend'), so it has no tenant schemas to "
            "show."
        )
    from django_tenants.utils import has_multi_type_tenants

    if has_multi_type_tenants():
        return (
            "This project has several tenant types (HAS_MULTI_TYPE_TENANTS): each type has "
            "its own migrations, and the states of its schemas are not shown here. "
            "manage.py migrate_schemas --check says, per schema, whether anything is left "
            "to apply."
        )
    return None


def fleet_schemas(database: str) -> list[str]:
    """The public schema, then the tenant schemas in django-tenants' order
    (``TENANT_MIGRATION_ORDER``, else the tenants' primary keys): one query."""
    from django_tenants.utils import (
        get_public_schema_name,
        get_tenant_migration_order,
        get_tenant_model,
    )

    public = get_public_schema_name()
    tenants = get_tenant_model().objects.using(database).exclude(schema_name=public)
    order = get_tenant_migration_order()
    tenants = tenants.order_by(*order) if order is not None else tenants.order_by("pk")
    return [public, *tenants.values_list("schema_name", flat=True)]
