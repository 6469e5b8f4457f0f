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

    Operations that need the live schema to render (introspecting constraint
    names, for example) fail fast on it; the analyser then judges them from the
    operation alone.
    """

    class OfflineOperations(template.ops_class):  # type: ignore[misc, name-defined]
        def compose_sql(self, sql: str, params: Any) -> str:
            # Django merges parameters into DDL with a client cursor, which needs a
            # connection; quote them without one (psycopg's quoting, no server).
            from psycopg.sql import quote

            return sql % tuple(quote(p) for p in (params or ()))

    class Offline(type(template)):  # type: ignore[misc]
        ops_class = OfflineOperations

        def get_new_connection(self, conn_params: Any) -> Any:
            raise DatabaseError("No database connection: rendering offline.")

    wrapper: BaseDatabaseWrapper = Offline({**template.settings_dict}, template.alias)
    wrapper.__dict__["pg_version"] = pg_version * 10000
    return wrapper
