"""Which statements PostgreSQL refuses inside a transaction, and which ones Django runs in one.

Two questions, asked by the analysis rules (SM3xx) and by the execution step planner:

* From a pglast parse tree alone: does PostgreSQL refuse to run this statement inside a
  transaction block (:func:`refuses_transaction`), and does it open, end or nest one
  (:func:`is_transaction_control`)? Each answer below was checked against the
  PostgreSQL manual and on a PostgreSQL 15 server (``tests/test_transactions.py``);
  PostgreSQL's error is SQLSTATE 25001, "… cannot run inside a transaction block".
* From a Django migration: is a statement inside a transaction block when Django applies
  it (:func:`enclosing_block`)? Django wraps an atomic migration in one transaction,
  unless the backend's schema editor declines to (django-pg-zero-downtime-migrations
  runs every migration without one, ``RunPython`` aside); and a ``RunSQL`` list item
  holding several statements is one query string, which PostgreSQL runs as one implicit
  transaction block even in a non-atomic migration.

Some refusals depend on the database, not on the statement, and are not detected:
``REINDEX TABLE``/``INDEX`` (PG 14+) and ``CLUSTER`` (PG 15+) of a partitioned table,
and ``CALL`` of a procedure that commits.

https://www.postgresql.org/docs/current/sql-createindex.html#SQL-CREATEINDEX-CONCURRENTLY
https://www.postgresql.org/docs/current/sql-reindex.html
https://www.postgresql.org/docs/current/sql-altertype.html
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from pglast import ast
from pglast.enums import (
    AlterSubscriptionType,
    AlterTableType,
    DiscardMode,
    ReindexObjectType,
    TransactionStmtKind,
)

from django_safemigrate.sql import Statement, parse

# --------------------------------------------------------------------------------------
# Parse trees
# --------------------------------------------------------------------------------------

#: ``REINDEX SCHEMA | DATABASE | SYSTEM`` reindex table after table, each in a
#: transaction of its own.
_REINDEX_MANY = {
    ReindexObjectType.REINDEX_OBJECT_SCHEMA: "REINDEX SCHEMA",
    ReindexObjectType.REINDEX_OBJECT_DATABASE: "REINDEX DATABASE",
    ReindexObjectType.REINDEX_OBJECT_SYSTEM: "REINDEX SYSTEM",
}

#: Statements that begin, end or nest a transaction (``COMMIT PREPARED`` and
#: ``ROLLBACK PREPARED`` are not among them: they finish another, prepared
#: transaction, and refuse to run inside one).
_CONTROL = {
    TransactionStmtKind.TRANS_STMT_BEGIN,
    TransactionStmtKind.TRANS_STMT_START,
    TransactionStmtKind.TRANS_STMT_COMMIT,
    TransactionStmtKind.TRANS_STMT_ROLLBACK,
    TransactionStmtKind.TRANS_STMT_SAVEPOINT,
    TransactionStmtKind.TRANS_STMT_RELEASE,
    TransactionStmtKind.TRANS_STMT_ROLLBACK_TO,
    TransactionStmtKind.TRANS_STMT_PREPARE,
}

_SAVEPOINTS = {
    TransactionStmtKind.TRANS_STMT_SAVEPOINT,
    TransactionStmtKind.TRANS_STMT_RELEASE,
    TransactionStmtKind.TRANS_STMT_ROLLBACK_TO,
}

_PUBLICATION_CHANGES = {
    AlterSubscriptionType.ALTER_SUBSCRIPTION_SET_PUBLICATION,
    AlterSubscriptionType.ALTER_SUBSCRIPTION_ADD_PUBLICATION,
    AlterSubscriptionType.ALTER_SUBSCRIPTION_DROP_PUBLICATION,
}


def refuses_transaction(node: Any, pg_version: int) -> str | None:
    """``None`` when ``node`` may run inside a transaction block, else the statement's name.

    ``pg_version`` is the major version of the server the statement will run on.
    """
    if isinstance(node, ast.IndexStmt):
        return "CREATE INDEX CONCURRENTLY" if node.concurrent else None
    if isinstance(node, ast.DropStmt):
        # Only DROP INDEX accepts CONCURRENTLY.
        return "DROP INDEX CONCURRENTLY" if node.concurrent else None
    if isinstance(node, ast.ReindexStmt):
        # REINDEX CONCURRENTLY: PG 12+. REINDEX (CONCURRENTLY false) is a plain REINDEX.
        if _option(node.params, "concurrently") is True:
            return "REINDEX CONCURRENTLY"
        return _REINDEX_MANY.get(node.kind) if node.kind is not None else None
    if isinstance(node, ast.AlterTableStmt):
        for cmd in node.cmds or ():
            if (
                isinstance(cmd, ast.AlterTableCmd)
                and cmd.subtype == AlterTableType.AT_DetachPartition
                and isinstance(cmd.def_, ast.PartitionCmd)
                and cmd.def_.concurrent
            ):
                # PG 14+. DETACH PARTITION … FINALIZE (which completes an interrupted
                # one) runs inside a transaction.
                return "ALTER TABLE … DETACH PARTITION … CONCURRENTLY"
        return None
    if isinstance(node, ast.VacuumStmt):
        # VACUUM in every form; ANALYZE alone (is_vacuumcmd false) runs in a transaction.
        return "VACUUM" if node.is_vacuumcmd else None
    if isinstance(node, ast.ClusterStmt):
        # CLUSTER without a table reclusters every clustered table, each in its own
        # transaction.
        return "CLUSTER without a table name" if node.relation is None else None
    if isinstance(node, ast.CreatedbStmt):
        return "CREATE DATABASE"
    if isinstance(node, ast.DropdbStmt):
        return "DROP DATABASE"
    if isinstance(node, ast.AlterDatabaseStmt):
        if any(d.defname == "tablespace" for d in _defelems(node.options)):
            return "ALTER DATABASE … SET TABLESPACE"
        return None
    if isinstance(node, ast.CreateTableSpaceStmt):
        return "CREATE TABLESPACE"
    if isinstance(node, ast.DropTableSpaceStmt):
        return "DROP TABLESPACE"
    if isinstance(node, ast.AlterSystemStmt):
        return "ALTER SYSTEM"
    if isinstance(node, ast.CreateSubscriptionStmt):
        return _create_subscription(node)
    if isinstance(node, ast.DropSubscriptionStmt):
        # Refused when the subscription has a replication slot, which the catalog
        # knows and the statement does not: assume it has one (the default).
        return "DROP SUBSCRIPTION of a subscription with a replication slot"
    if isinstance(node, ast.AlterSubscriptionStmt):
        return _alter_subscription(node, pg_version)
    if isinstance(node, ast.AlterEnumStmt):
        # ADD VALUE (not RENAME VALUE, which has an old value): refused before PG 12.
        if node.oldVal is None and pg_version < 12:
            return "ALTER TYPE … ADD VALUE (before PostgreSQL 12)"
        return None
    if isinstance(node, ast.DiscardStmt):
        return "DISCARD ALL" if node.target == DiscardMode.DISCARD_ALL else None
    if isinstance(node, ast.TransactionStmt):
        if node.kind == TransactionStmtKind.TRANS_STMT_COMMIT_PREPARED:
            return "COMMIT PREPARED"
        if node.kind == TransactionStmtKind.TRANS_STMT_ROLLBACK_PREPARED:
            return "ROLLBACK PREPARED"
        return None
    if isinstance(node, ast.DoStmt):
        # PL/pgSQL's COMMIT and ROLLBACK (PG 11+) are refused with "invalid transaction
        # termination" (SQLSTATE 2D000) when the DO runs inside a transaction block.
        return "DO block that commits or rolls back" if _do_ends_transaction(node) else None
    return None


def is_transaction_control(node: Any) -> bool:
    """True for BEGIN/START, COMMIT/END, ROLLBACK/ABORT, SAVEPOINT, RELEASE, ROLLBACK TO
    and PREPARE TRANSACTION: statements that begin, end or nest the transaction the
    migration runner manages."""
    return isinstance(node, ast.TransactionStmt) and node.kind in _CONTROL


def is_savepoint(node: Any) -> bool:
    """SAVEPOINT, RELEASE SAVEPOINT and ROLLBACK TO SAVEPOINT: only valid inside a transaction
    block (SQLSTATE 25P01 outside one), harmless inside one."""
    return isinstance(node, ast.TransactionStmt) and node.kind in _SAVEPOINTS


def added_enum_value(node: Any) -> str | None:
    """The label ``ALTER TYPE … ADD VALUE`` adds (``None`` for any other statement).

    From PostgreSQL 12 the statement runs inside a transaction, but the new label cannot
    be used before that transaction commits ("unsafe use of new value", SQLSTATE 55P04),
    even when the type was created in the same transaction.
    """
    if isinstance(node, ast.AlterEnumStmt) and node.oldVal is None and node.newVal is not None:
        return str(node.newVal)
    return None


def uses_string_constant(node: Any, value: str) -> bool:
    """True when ``value`` is a string constant in ``node``'s parse tree (identifiers and
    function or ``DO`` bodies do not count)."""
    finder = _string_constants_class()()
    finder(node)
    return value in finder.values


@functools.cache
def _string_constants_class() -> Any:
    # pglast.visitors loads pglast's SQL printers (tens of modules): only the analysis
    # rules need it, not the step planner of a deploy, so it is imported on first use.
    from pglast.visitors import Visitor

    class StringConstants(Visitor):
        def __init__(self) -> None:
            self.values: set[str] = set()

        def visit_A_Const(self, ancestors: Any, node: Any) -> None:
            if isinstance(node.val, ast.String):
                self.values.add(str(node.val.sval))

    return StringConstants


def _defelems(options: Iterable[Any] | None) -> Iterator[Any]:
    for option in options or ():
        if isinstance(option, ast.DefElem):
            yield option


def _option(options: Iterable[Any] | None, name: str) -> bool | None:
    """The boolean value of option ``name`` in a ``WITH (…)``/``(…)`` list; ``None`` if absent.

    Read as PostgreSQL's ``defGetBoolean`` does: no value means true; 1/0, true/false and
    on/off (any case) are accepted. Anything else is read as true (PostgreSQL would
    reject the statement anyway).
    """
    for option in _defelems(options):
        if option.defname != name:
            continue
        value = option.arg
        if value is None:
            return True
        if isinstance(value, ast.Boolean):
            return bool(value.boolval)
        if isinstance(value, ast.Integer):
            return bool(value.ival)
        if isinstance(value, ast.String):
            return str(value.sval).lower() not in {"false", "off", "0"}
        return True
    return None


def _create_subscription(node: Any) -> str | None:
    # create_slot defaults to true, and to false with connect = false.
    create_slot = _option(node.options, "create_slot")
    if create_slot is None:
        create_slot = _option(node.options, "connect") is not False
    return "CREATE SUBSCRIPTION … WITH (create_slot = true)" if create_slot else None


def _alter_subscription(node: Any, pg_version: int) -> str | None:
    if node.kind == AlterSubscriptionType.ALTER_SUBSCRIPTION_REFRESH:
        return "ALTER SUBSCRIPTION … REFRESH PUBLICATION"
    if node.kind in _PUBLICATION_CHANGES and _option(node.options, "refresh") is not False:
        return "ALTER SUBSCRIPTION … PUBLICATION with refresh"
    if (
        node.kind == AlterSubscriptionType.ALTER_SUBSCRIPTION_OPTIONS
        and pg_version >= 17
        and _option(node.options, "failover") is not None
    ):
        # PG 17 added failover, which alters the replication slot.
        return "ALTER SUBSCRIPTION … SET (failover)"
    return None


def _do_ends_transaction(node: Any) -> bool:
    from pglast import parse_plpgsql

    body = None
    language = "plpgsql"
    for option in _defelems(node.args):
        if option.defname == "as" and isinstance(option.arg, ast.String):
            body = str(option.arg.sval)
        elif option.defname == "language" and isinstance(option.arg, ast.String):
            language = str(option.arg.sval).lower()
    if body is None or language != "plpgsql":
        return False
    # PL/pgSQL is parsed as the body of a function; quote the body with a dollar tag
    # that does not occur in it.
    tag = "$safemigrate$"
    while tag in body:
        tag = tag[:-1] + "_$"
    try:
        tree = parse_plpgsql(
            f"CREATE FUNCTION safemigrate_do() RETURNS void LANGUAGE plpgsql AS {tag}{body}{tag}"
        )
    except Exception:  # a body PostgreSQL cannot parse fails on its own
        return False
    return _contains_key(tree, {"PLpgSQL_stmt_commit", "PLpgSQL_stmt_rollback"})


def _contains_key(tree: Any, keys: set[str]) -> bool:
    stack = [tree]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if keys.intersection(item):
                return True
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


# --------------------------------------------------------------------------------------
# How Django runs a migration
# --------------------------------------------------------------------------------------


class Block(enum.Enum):
    """Why a statement runs inside a transaction block."""

    #: Django runs the whole (atomic) migration in one transaction.
    MIGRATION = "migration"
    #: The operation asks for a transaction of its own (``RunPython`` in an atomic
    #: migration on a backend that does not wrap migrations, ``atomic=True``).
    OPERATION = "operation"
    #: A ``RunSQL`` list item with several statements: one query string, which
    #: PostgreSQL runs as one implicit transaction block.
    QUERY_STRING = "query string"


_WRAPS_MIGRATIONS: dict[type, bool] = {}


def backend_wraps_migrations(connection: Any) -> bool:
    """True when the connection's schema editor runs an atomic migration in a transaction.

    Django's PostgreSQL backend does; django-pg-zero-downtime-migrations' does not (it
    passes ``atomic=False`` whatever the migration says).
    """
    kind = type(connection)
    if kind not in _WRAPS_MIGRATIONS:
        editor = connection.schema_editor(collect_sql=True, atomic=True)
        _WRAPS_MIGRATIONS[kind] = bool(editor.atomic_migration)
    return _WRAPS_MIGRATIONS[kind]


def migration_in_transaction(migration: Any, connection: Any) -> bool:
    """True when Django applies ``migration`` inside one transaction."""
    return bool(migration.atomic) and backend_wraps_migrations(connection)


def operation_block(migration: Any, operation: Any, connection: Any) -> Block | None:
    """The transaction ``operation`` runs in, as ``Migration.apply`` decides; ``None`` if none."""
    if migration_in_transaction(migration, connection):
        return Block.MIGRATION
    # Migration.apply: an atomic operation, or one that does not opt out (atomic=None,
    # as RunPython by default) in an atomic migration, gets a transaction of its own.
    atomic = getattr(operation, "atomic", False)
    if atomic or (migration.atomic and atomic is not False):
        return Block.OPERATION
    return None


def query_strings(operation: Any) -> list[tuple[Statement, ...]]:
    """The statements of each query string a ``RunSQL`` sends (also inside
    ``SeparateDatabaseAndState``); empty for other operations.

    A list item is sent whole, in one ``cursor.execute`` (its parameters merged in on
    the client); a single string is split by Django into statements, each sent on its own.
    """
    from django.db.migrations.operations.special import RunSQL, SeparateDatabaseAndState

    # Parsed as the analysis parses RunSQL (parameters merged in), one item at a time.
    from django_safemigrate.sql import _runsql_statements

    if isinstance(operation, SeparateDatabaseAndState):
        return [batch for op in operation.database_operations for batch in query_strings(op)]
    if not isinstance(operation, RunSQL):
        return []
    sql = operation.sql
    if isinstance(sql, str):
        return [(statement,) for statement in parse(sql, handwritten=True)]
    return [tuple(_runsql_statements(RunSQL([item]))) for item in sql]


def query_string_of(operation: Any, statement: Statement) -> tuple[Statement, ...] | None:
    """The statements sent together with ``statement`` when there are several, else ``None``."""
    for batch in query_strings(operation):
        if len(batch) > 1 and statement in batch:
            return batch
    return None


def enclosing_block(
    migration: Any, operation: Any, statement: Statement, connection: Any
) -> Block | None:
    """The transaction block ``statement`` of ``operation`` runs in; ``None`` for autocommit."""
    block = operation_block(migration, operation, connection)
    if block is not None:
        return block
    if statement.handwritten and query_string_of(operation, statement) is not None:
        return Block.QUERY_STRING
    return None


def statements_after(
    operations: Sequence[Any], index: int, statement: Statement, block: Block, operation: Any
) -> Iterator[Statement]:
    """Statements that run after ``statement`` (of ``operations[index]``) in the same ``block``.

    ``operations`` are the migration's ``OperationSQL`` in order.
    """
    if block is Block.QUERY_STRING:
        batch = query_string_of(operation, statement) or ()
        yield from batch[batch.index(statement) + 1 :] if statement in batch else ()
        return
    own = operations[index].statements
    position = next((i for i, s in enumerate(own) if s is statement), len(own))
    yield from own[position + 1 :]
    if block is Block.MIGRATION:
        for later in operations[index + 1 :]:
            yield from later.statements
