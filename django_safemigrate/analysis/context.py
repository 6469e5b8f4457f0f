"""What a rule check can see besides the node or operation it is given."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.migrations import Migration
from django.db.migrations.state import ProjectState

from django_safemigrate.analysis.findings import TableInfo
from django_safemigrate.analysis.run_order import RunOrder
from django_safemigrate.sql import OperationSQL, Statement

if TYPE_CHECKING:
    from django_safemigrate.analysis.catalog import Catalog


@dataclasses.dataclass
class MigrationContext:
    """One migration being judged, and what is known about the target database."""

    migration: Migration
    connection: BaseDatabaseWrapper
    #: Major version of the PostgreSQL the migration is judged for (e.g. 15).
    pg_version: int
    #: Looks a table up on the connected database; ``None`` offline or when it is missing.
    table_info: Callable[[str], TableInfo | None]
    #: True when the live database is the one the migrations are about to be applied to
    #: (the default selection: its unapplied migrations), so a table missing there is
    #: created by an earlier migration of the same deploy and is new. With ``--all`` or
    #: ``--since`` the database says nothing about which tables are new.
    live: bool
    #: Below this estimated row count a lock finding is reported but does not block.
    small_table_rows: int
    #: Tables created by earlier operations of this migration (empty, so nothing to lock).
    created_tables: set[str] = dataclasses.field(default_factory=set)
    operations: list[OperationSQL] = dataclasses.field(default_factory=list)
    #: Shared by every migration of one walk, in plan order: what rules learnt from the
    #: migrations before this one (keys are namespaced by rule code).
    facts: dict[str, Any] = dataclasses.field(default_factory=dict)
    #: The live schema, read through the analysis's own read-only channel
    #: (:class:`~django_safemigrate.analysis.catalog.Catalog`); ``None`` offline. Rules
    #: never open a cursor themselves: inside the analysis every connection refuses.
    catalog: Catalog | None = None
    #: The online plans of the operations ``safemigrate`` runs online (by operation index;
    #: empty when online execution is off): :mod:`django_safemigrate.online.rewrite`.
    online: dict[int, Any] = dataclasses.field(default_factory=dict)

    @functools.cached_property
    def run_order(self) -> RunOrder:
        """The migration's statements in run order, with their transactions."""
        return RunOrder(self.migration, self.operations, self.connection)

    @property
    def state_before(self) -> ProjectState | None:
        """The project state before the migration: the models the code still running has."""
        return next((op.from_state for op in self.operations if op.from_state is not None), None)

    @property
    def atomic(self) -> bool:
        return bool(self.migration.atomic)

    def is_new_table(self, table: str | None) -> bool:
        """True when ``table`` is created by this migration (or absent from the live database)."""
        if not table:
            return False
        if table in self.created_tables:
            return True
        return self.live and self.table_info(table) is None

    def is_small_table(self, table: str | None) -> bool:
        info = self.table_info(table) if table else None
        return info is not None and info.rows < self.small_table_rows


@dataclasses.dataclass
class OperationContext:
    """One operation of the migration, with the project state before it."""

    migration: MigrationContext
    sql: OperationSQL
    from_state: ProjectState | None

    @property
    def app_label(self) -> str:
        return str(self.migration.migration.app_label)

    @property
    def operation(self) -> Any:
        return self.sql.operation

    def model_state(self, model_name: str) -> Any:
        """The model (as rendered before this operation), or ``None``."""
        if self.from_state is None:
            return None
        key = (self.app_label, model_name.lower())
        if key not in self.from_state.models:
            return None
        return self.from_state.apps.get_model(self.app_label, model_name)

    def table_of(self, model_name: str) -> str | None:
        model = self.model_state(model_name)
        return str(model._meta.db_table) if model is not None else None


@dataclasses.dataclass
class StatementContext:
    """One statement of an operation."""

    operation: OperationContext
    statement: Statement

    @property
    def migration(self) -> MigrationContext:
        return self.operation.migration


@dataclasses.dataclass(frozen=True)
class UnparsableSQL:
    """Stands in for the parse tree of a statement PostgreSQL cannot parse."""

    sql: str
    error: str
