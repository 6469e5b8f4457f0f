"""What the analysis learns from a live database, and how it renders SQL without one."""

from __future__ import annotations

from typing import Any

from django.db import DatabaseError
from django.db.backends.base.base import BaseDatabaseWrapper

from django_safemigrate.analysis.findings import TableInfo


def table_sizes(connection: BaseDatabaseWrapper) -> dict[str, TableInfo]:
    """Estimated rows and total size of every table in the current schema search path."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT c.relname, GREATEST(c.reltuples, 0)::bigint, pg_total_relation_size(c.oid)
            FROM pg_class c
            WHERE c.relkind IN ('r', 'p', 'm')
              AND c.relnamespace = ANY (
                  SELECT oid FROM pg_namespace WHERE nspname = ANY (current_schemas(false))
              )
            """
        )
        return {name: TableInfo(name, int(rows), int(size)) for name, rows, size in cursor}


def server_major(connection: BaseDatabaseWrapper) -> int:
    return int(getattr(connection, "pg_version", 0) // 10000)


def oldest_supported(connection: BaseDatabaseWrapper) -> int:
    """The oldest PostgreSQL major version the installed Django supports."""
    minimum: Any = getattr(connection.features, "minimum_database_version", None) or (12,)
    return int(minimum[0])


def offline_connection(template: BaseDatabaseWrapper, pg_version: int) -> BaseDatabaseWrapper:
    """A wrapper that renders SQL for ``pg_version`` and never connects.

    Where the schema editor would look up the name of a constraint or sequence it is about
    to drop or alter, it gets the name Django gives such objects by default. Anything else
    that needs the live schema fails fast; the analyser then judges the operation alone.
    """

    class OfflineOperations(template.ops_class):  # type: ignore[misc, name-defined]
        def compose_sql(self, sql: str, params: Any) -> str:
            # Django merges parameters into DDL with a client cursor, which needs a
            # connection; quote them without one (psycopg's quoting, no server).
            from psycopg.sql import quote

            return sql % tuple(quote(p) for p in (params or ()))

    class OfflineSchemaEditor(template.SchemaEditorClass):  # type: ignore[misc, name-defined]
        # Where Django asks the live schema for the name of a constraint or index it knows
        # exists (to drop it), answer with the name Django itself gives it when creating it,
        # so the statements render (and are judged) offline too.
        def _constraint_names(  # noqa: PLR0917  # Django's signature
            self,
            model: Any,
            column_names: Any = None,
            unique: Any = None,
            primary_key: Any = None,
            index: Any = None,
            foreign_key: Any = None,
            check: Any = None,
            type_: Any = None,
            exclude: Any = None,
        ) -> list[str]:
            suffix = (
                "_pk"
                if primary_key
                else "_fk"
                if foreign_key
                else "_uniq"
                if unique
                else "_check"
                if check
                else (f"_{type_}" if type_ else "_idx")
            )
            table = model._meta.db_table
            return [self._create_index_name(table, list(column_names or []), suffix=suffix)]

        def _get_sequence_name(self, table: str, column: str) -> str:
            return f"{table}_{column}_seq"

    class Offline(type(template)):  # type: ignore[misc]
        ops_class = OfflineOperations
        SchemaEditorClass = OfflineSchemaEditor

        def get_new_connection(self, conn_params: Any) -> Any:
            raise DatabaseError("No database connection: rendering offline.")

    wrapper: BaseDatabaseWrapper = Offline({**template.settings_dict}, template.alias)
    wrapper.__dict__["pg_version"] = pg_version * 10000
    return wrapper
