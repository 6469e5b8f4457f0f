"""What the analysis learns from a live database, and how it renders SQL without one.

Every read goes through :func:`read_only_transaction`: the analysis never writes, and never
queues behind a lock. A session holding ACCESS EXCLUSIVE on a table (a migration running
elsewhere, a long ``ALTER TABLE``) must not make ``checkmigrations`` or the judgement before
a deploy wait for it, let alone while the deploy holds the migration lock.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from django.db import DatabaseError, transaction
from django.db.backends.base.base import BaseDatabaseWrapper

from django_safemigrate import djangocompat
from django_safemigrate.analysis.findings import TableInfo

#: How long one of the analysis's reads may wait for a lock. Its reads only touch the
#: system catalogs, which ordinary locks on tables do not block; the timeout is there so
#: that a read nobody foresaw fails fast instead of waiting for as long as the lock lasts.
#: https://www.postgresql.org/docs/current/runtime-config-client.html#GUC-LOCK-TIMEOUT
CATALOG_LOCK_TIMEOUT = "500ms"


@contextlib.contextmanager
def read_only_transaction(connection: BaseDatabaseWrapper) -> Iterator[None]:
    """Run the block in a read-only transaction with a short ``lock_timeout``, rolled back.

    ``transaction_read_only`` on (what ``SET TRANSACTION READ ONLY`` sets) makes PostgreSQL
    refuse any write (``INSERT``, ``CREATE``, ``ALTER``, ``DROP``, …) until the transaction
    ends; ``set_config(..., true)`` is ``SET LOCAL``: both end with the transaction, and
    never stay on a session a pooler hands to someone else. Both are set by one statement
    (a transaction may become read-only at any point). Inside a transaction that is
    already open (a test's), the block runs in a savepoint, and rolling it back undoes
    both settings.
    https://www.postgresql.org/docs/current/sql-set-transaction.html
    """
    with transaction.atomic(using=connection.alias):
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT set_config('transaction_read_only', 'on', true), "
                "set_config('lock_timeout', %s, true)",
                [CATALOG_LOCK_TIMEOUT],
            )
        try:
            yield
        finally:
            transaction.set_rollback(True, using=connection.alias)


#: Estimated rows and size of each table, from ``pg_class`` alone. ``reltuples`` and
#: ``relpages`` are the planner's estimates, kept up to date by VACUUM, ANALYZE and CREATE
#: INDEX; the size counts the table, its TOAST table and its indexes. A partitioned table
#: stores nothing itself (its estimate is -1 until an ANALYZE of it, which sums its
#: partitions at that time): it counts what its leaf partitions hold, at every level.
#: Functions such as ``pg_total_relation_size()`` or ``pg_partition_tree()`` would open
#: every relation, taking an ACCESS SHARE lock on each, and so wait behind any session
#: holding ACCESS EXCLUSIVE on one of them. Only the relations of the search path's
#: schemas (and the partitions below their partitioned tables, wherever those are) are
#: measured: in a database of many tenant schemas the work stays that of one schema.
#: https://www.postgresql.org/docs/current/catalog-pg-class.html
_TABLE_SIZES = """
    WITH RECURSIVE listed AS (
        SELECT c.oid, c.relname, c.relkind
        FROM pg_class c
        WHERE c.relkind IN ('r', 'p', 'm')
          AND c.relnamespace = ANY (
              SELECT oid FROM pg_namespace WHERE nspname = ANY (current_schemas(false))
          )
    ), tree(root, rel) AS (
        SELECT oid, oid FROM listed WHERE relkind = 'p'
        UNION ALL
        SELECT tree.root, i.inhrelid FROM tree JOIN pg_inherits i ON i.inhparent = tree.rel
    ), own AS (
        SELECT c.oid,
               c.relkind,
               GREATEST(c.reltuples, 0)::bigint AS rows,
               (c.relpages::bigint
                + COALESCE(t.relpages, 0)
                + COALESCE((SELECT sum(i.relpages)
                            FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
                            WHERE x.indrelid = c.oid), 0)
               ) * current_setting('block_size')::bigint AS bytes
        FROM pg_class c
        LEFT JOIN pg_class t ON t.oid = c.reltoastrelid
        WHERE c.relkind IN ('r', 'p', 'm')
          AND c.oid = ANY (ARRAY(SELECT oid FROM listed UNION SELECT rel FROM tree))
    )
    SELECT l.relname,
           CASE WHEN l.relkind = 'p'
                THEN (SELECT COALESCE(sum(o.rows), 0) FROM tree JOIN own o ON o.oid = tree.rel
                      WHERE tree.root = l.oid AND o.relkind <> 'p')
                ELSE own.rows END,
           CASE WHEN l.relkind = 'p'
                THEN (SELECT COALESCE(sum(o.bytes), 0) FROM tree JOIN own o ON o.oid = tree.rel
                      WHERE tree.root = l.oid AND o.relkind <> 'p')
                ELSE own.bytes END
    FROM listed l
    JOIN own ON own.oid = l.oid
"""


def table_sizes(connection: BaseDatabaseWrapper) -> dict[str, TableInfo]:
    """Estimated rows and total size of every table in the current schema search path."""
    with read_only_transaction(connection), connection.cursor() as cursor:
        cursor.execute(_TABLE_SIZES)
        return {name: TableInfo(name, int(rows), int(size)) for name, rows, size in cursor}


def server_major(connection: BaseDatabaseWrapper) -> int:
    return int(getattr(connection, "pg_version", 0) // 10000)


def oldest_supported(connection: BaseDatabaseWrapper) -> int:
    """The oldest PostgreSQL major version the installed Django supports."""
    minimum: Any = getattr(connection.features, "minimum_database_version", None) or (12,)
    return int(minimum[0])


_OFFLINE_CLASSES: dict[type[BaseDatabaseWrapper], type[BaseDatabaseWrapper]] = {}


def offline_connection(template: BaseDatabaseWrapper, pg_version: int) -> BaseDatabaseWrapper:
    """A wrapper like ``template`` that renders SQL for ``pg_version`` and never connects.

    The analysis renders through it without a database: what the schema editor would ask
    the live schema (the name of a constraint it drops) gets the answer Django gives such
    objects by default (:mod:`django_safemigrate.analysis.sandbox`).
    """

    backend = type(template)
    offline = _OFFLINE_CLASSES.get(backend)
    if offline is None:

        class Offline(backend):  # type: ignore[valid-type, misc]
            def get_new_connection(self, conn_params: Any) -> Any:
                raise DatabaseError("No database connection: rendering offline.")

        offline = _OFFLINE_CLASSES[backend] = Offline
    wrapper: BaseDatabaseWrapper = offline({**template.settings_dict}, template.alias)
    djangocompat.set_server_version(wrapper, pg_version * 10000)
    return wrapper
