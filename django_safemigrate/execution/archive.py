"""Keep what a destructive step drops (``SAFEMIGRATE['ARCHIVE']``).

With the archive on, a ``RemoveField`` copies the column with the table's primary key,
and a ``DeleteModel`` copies the whole table, into a table of the archive schema
(``CREATE TABLE … AS SELECT``), just before the drop and on the same connection: inside
the step's transaction, so the copy and its ledger row (:class:`~django_safemigrate.models.Archive`)
commit with the drop or roll back with it. ``manage.py restorearchive`` puts the data back
(:mod:`django_safemigrate.execution.restore`).

The operations are wrapped for the one migration being applied
(:func:`archiving`), so Django's own executor (plain ``migrate``) and the step runner
(``safemigrate``) archive alike, and analysis, which renders SQL without running it,
never reaches the wrapper. A database's first deploy archives nothing: a new database
holds no data to lose.

``CREATE TABLE AS`` copies values and column types, not constraints, defaults or
indexes (https://www.postgresql.org/docs/current/sql-createtableas.html): an archive
is a copy of the data, not of the table's definition.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable, Iterator
from typing import Any

from django.db.migrations import Migration
from django.db.migrations import operations as ops
from django.utils import timezone

from django_safemigrate.execution.ledger import Ledger

#: PostgreSQL's limit on identifiers (NAMEDATALEN - 1).
MAX_NAME = 63


def archive_table_name(table: str, column: str | None, run_id: int) -> str:
    """``<table>__<column>__<run>`` (``<table>__<run>`` for a whole table), shortened
    with a hash of the full name when it would pass PostgreSQL's 63 characters."""
    parts = [table, column, str(run_id)] if column else [table, str(run_id)]
    name = "__".join(parts)
    if len(name) <= MAX_NAME:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    tail = f"__{run_id}_{digest}"
    return name[: MAX_NAME - len(tail)] + tail


class Archiver:
    """Copies dropped data into the archive schema and records it in the ledger."""

    def __init__(self, ledger: Ledger, schema: str, notify: Callable[[str], None]) -> None:
        self.ledger = ledger
        self.schema = schema
        self.notify = notify

    def _pk_columns(self, model: Any) -> list[str]:
        pk = model._meta.pk
        if getattr(pk, "column", None):
            return [pk.column]
        # A composite primary key (Django 5.2+).
        return [field.column for field in getattr(pk, "fields", ())]

    def archive(
        self,
        editor: Any,
        migration: Migration,
        where: tuple[int, Any],
        model: Any,
        column: str | None,
    ) -> None:
        """Copy ``model``'s ``column`` (with its primary key), or the whole table, and
        record the copy, on ``editor``'s connection (inside its transaction, if any).
        ``where``: the dropping operation's index in the migration, and the operation."""
        index, operation = where
        ledger = self.ledger
        if not ledger.writable():
            # This app's own tables are not all there yet (plain migrate applies them in
            # the order of the plan): the copy could not be recorded, so none is made.
            self.notify(
                f"    {migration.app_label}.{migration.name}: the data of "
                f"{model._meta.db_table}{f'.{column}' if column else ''} was not archived: "
                "the ledger's tables do not exist yet (run safemigrate, which creates them first)"
            )
            return
        ledger.open_run()
        assert ledger.run_id is not None
        connection = editor.connection
        quote = editor.quote_name
        table = model._meta.db_table
        pk_columns = self._pk_columns(model)
        name = self._free_name(connection, archive_table_name(table, column, ledger.run_id))
        selected = "*" if column is None else ", ".join(quote(c) for c in [*pk_columns, column])
        target = f"{quote(self.schema)}.{quote(name)}"
        with connection.cursor() as cursor:
            cursor.execute(f"CREATE SCHEMA IF NOT EXISTS {quote(self.schema)}")
            cursor.execute(f"CREATE TABLE {target} AS SELECT {selected} FROM {quote(table)}")
            rows = cursor.rowcount
            cursor.execute(
                f"COMMENT ON TABLE {target} IS %s",
                [
                    f"django_safemigrate archive of {table}{f'.{column}' if column else ''}, "
                    f"dropped by {migration.app_label}.{migration.name} in run {ledger.run_id}"
                ],
            )
        from django_safemigrate.models import Archive

        Archive.objects.using(connection.alias).create(
            run_id=ledger.run_id,
            app_label=migration.app_label,
            name=migration.name,
            operation_index=index,
            operation=type(operation).__name__,
            source_table=table,
            source_column=column or "",
            primary_key=",".join(pk_columns),
            archive_schema=self.schema,
            archive_table=name,
            row_count=max(rows, 0),
            created_at=timezone.now(),
        )

    def _free_name(self, connection: Any, name: str) -> str:
        """``name``, or ``name_2``, ``name_3``… when a table of that name exists (a step
        outside a transaction that ran before and failed after its copy)."""
        candidate, n = name, 1
        while True:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT to_regclass(format('%%I.%%I', %s::text, %s::text))",
                    [self.schema, candidate],
                )
                if cursor.fetchone()[0] is None:
                    return candidate
            n += 1
            suffix = f"_{n}"
            candidate = name[: MAX_NAME - len(suffix)] + suffix


def _dropping(operation: Any) -> bool:
    return isinstance(operation, ops.RemoveField | ops.DeleteModel)


def _wrap(archiver: Archiver, migration: Migration, index: int, operation: Any) -> Any:
    """Make ``operation`` archive before it drops; returns its own ``database_forwards``."""
    original = operation.database_forwards

    def database_forwards(app_label: str, editor: Any, from_state: Any, to_state: Any) -> None:
        if not getattr(editor, "collect_sql", False):
            if isinstance(operation, ops.RemoveField):
                model = from_state.apps.get_model(app_label, operation.model_name)
                field = model._meta.get_field(operation.name)
                # A many-to-many field's data is its own table, dropped with the field.
                if getattr(field, "column", None) and not field.many_to_many:
                    archiver.archive(editor, migration, (index, operation), model, field.column)
            else:
                model = from_state.apps.get_model(app_label, operation.name)
                # Django drops nothing for an unmanaged or proxy model.
                if model._meta.managed and not model._meta.proxy:
                    archiver.archive(editor, migration, (index, operation), model, None)
        original(app_label, editor, from_state, to_state)

    operation.database_forwards = database_forwards
    return original


@contextlib.contextmanager
def archiving(archiver: Archiver | None, migration: Migration) -> Iterator[None]:
    """While ``migration`` is applied, its ``RemoveField``/``DeleteModel`` operations (and
    those inside a ``SeparateDatabaseAndState``'s database side) archive first."""
    if archiver is None:
        yield
        return
    wrapped: list[tuple[Any, Any]] = []
    for index, operation in enumerate(migration.operations):
        inner = (
            operation.database_operations
            if isinstance(operation, ops.SeparateDatabaseAndState)
            else [operation]
        )
        for candidate in inner:
            if _dropping(candidate):
                wrapped.append((candidate, _wrap(archiver, migration, index, candidate)))
    try:
        yield
    finally:
        for operation, _original in wrapped:
            # The instance attribute goes: the class's method is back.
            del operation.database_forwards
