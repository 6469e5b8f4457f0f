"""``checkmigrations --drift``: the live database against what its applied migrations build.

The live database is only read, inside a read-only transaction (``SET TRANSACTION READ
ONLY``, rolled back): its schema from the catalogs and its applied migrations from
``django_migrations``. Those migrations are then applied, in the graph's order, to a
throwaway database on the same server (:mod:`~django_safemigrate.schema.ephemeral`), and
the two schemas compared. An object the live database has and the migrations do not
build is extra (an index made by hand), one they build and it lacks is missing, one on
both sides described differently is different (a default changed by hand).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.state import ProjectState

from django_safemigrate.analysis.database import read_only_transaction
from django_safemigrate.exceptions import SafemigrateError
from django_safemigrate.execution.run import connect, describe_database
from django_safemigrate.plan import SharedDiskLoader, check_history, load_disk_migrations
from django_safemigrate.schema.compare import Difference, compare
from django_safemigrate.schema.ephemeral import ephemeral_database
from django_safemigrate.schema.roundtrip import full_order
from django_safemigrate.schema.snapshot import read_migrated_schema

Key = tuple[str, str]


class SchemaBuildFailed(SafemigrateError):
    """The applied migrations could not be applied to a new database (exit 1)."""


@dataclasses.dataclass(frozen=True)
class DriftResult:
    #: ``'default' (postgres@host:5432/shop)``.
    database: str
    #: How many applied migrations the comparison was built from.
    applied: int
    differences: tuple[Difference, ...]
    #: Differences left out by ``DRIFT_IGNORE``.
    ignored: int
    #: Applied migrations that no migration file of the project stands for.
    unknown: tuple[Key, ...]

    @property
    def drifted(self) -> bool:
        return bool(self.differences)


def run_drift(connection: BaseDatabaseWrapper, ignore: Sequence[str]) -> DriftResult:
    """Compare ``connection``'s database with what its applied migrations build."""
    load_disk_migrations("Nothing was read.")
    connect(connection)
    with read_only_transaction(connection):
        live = read_migrated_schema(connection)
        loader = SharedDiskLoader(connection)
        check_history(loader, connection, nothing="Nothing was compared.")
        applied = set(loader.applied_migrations)
    with ephemeral_database(connection, "drift"):
        scratch = connections[connection.alias]
        executor = MigrationExecutor(scratch)
        nodes = executor.loader.graph.nodes
        order = [key for key in full_order(executor.loader) if key in applied]
        # Migrations replaced by a squashed one that is applied too are in the squash.
        replaced = {name for key in applied if key in nodes for name in (nodes[key].replaces or ())}
        unknown = tuple(sorted(key for key in applied if key not in nodes and key not in replaced))
        executor.recorder.ensure_schema()
        state: ProjectState = ProjectState(real_apps=executor.loader.unmigrated_apps)
        for key in order:
            try:
                state = executor.apply_migration(state, nodes[key])
            except Exception as exc:
                raise SchemaBuildFailed(
                    f"Applying {key[0]}.{key[1]} to a new database failed: {exc}. The drift "
                    f"check builds the schema of the migrations applied on "
                    f"{describe_database(connection)} in a new database, and the migration "
                    "files no longer build it; fix the migration (or check the server's "
                    "extensions), then run the check again. Nothing was changed on the "
                    "checked database."
                ) from exc
        built = read_migrated_schema(scratch)
    differences, ignored = compare(built, live, ignore=ignore)
    return DriftResult(
        database=describe_database(connection),
        applied=len(order),
        differences=tuple(differences),
        ignored=ignored,
        unknown=unknown,
    )
