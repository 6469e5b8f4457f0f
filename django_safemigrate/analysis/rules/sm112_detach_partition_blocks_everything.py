"""Detaching a partition without CONCURRENTLY locks the partitioned table against reads and writes.

``ALTER TABLE … DETACH PARTITION …`` takes an ACCESS EXCLUSIVE lock on the
partitioned table (and on the partition). The detach itself is quick, but the
lock request waits for every query running on the table, and every query that
arrives after it, reads included, queues behind the waiting ``DETACH``: one long
transaction on the table turns a quick detach into an outage (checked on
PostgreSQL 15: ``pg_locks`` shows ACCESS EXCLUSIVE on both tables, and a plain
``SELECT`` on the partitioned table waits while the detach is open).

From PostgreSQL 14, ``DETACH PARTITION … CONCURRENTLY`` takes SHARE UPDATE
EXCLUSIVE on the partitioned table instead, which lets reads and writes through:
it runs as two transactions of its own and waits in between for the
transactions that use the table. PostgreSQL refuses it inside a transaction
block (SM301) and while the table has a default partition; cancelled or
interrupted, it leaves the partition "pending detach", and
``ALTER TABLE … DETACH PARTITION … FINALIZE`` completes it.

Safe alternative (PostgreSQL 14+), in a migration with ``atomic = False``, the
statement alone in its ``RunSQL``::

    class Migration(migrations.Migration):
        atomic = False
        operations = [
            migrations.RunSQL(
                'ALTER TABLE "metrics_event" DETACH PARTITION "metrics_event_2023" CONCURRENTLY',
                reverse_sql=(
                    'ALTER TABLE "metrics_event" ATTACH PARTITION "metrics_event_2023" '
                    "FOR VALUES FROM ('2023-01-01') TO ('2024-01-01')"
                ),
            ),
        ]

Before PostgreSQL 14 there is no concurrent form: detach at a time when no long
transaction uses the table.

No Django operation emits ``DETACH PARTITION``; it comes from ``RunSQL``, which
``safemigrate`` runs as its author wrote it, so online execution has no form for
it (and SM111, which reports the statements online execution cannot rewrite, does
not fire): the finding asks for ``CONCURRENTLY`` in the migration itself. A
partitioned table created in the same migration, or a small one (its partitions'
rows counted), is reported but does not block.

https://www.postgresql.org/docs/current/sql-altertable.html#SQL-ALTERTABLE-DETACH-PARTITION
"""

from __future__ import annotations

import copy
from collections.abc import Iterator

from pglast import ast
from pglast.enums import AlterTableType
from pglast.stream import RawStream

from django_safemigrate.analysis.context import StatementContext
from django_safemigrate.analysis.findings import Hit
from django_safemigrate.analysis.pgtree import alter_commands, relation_name
from django_safemigrate.analysis.registry import Rule
from django_safemigrate.enums import Kind, LockMode, Risk

rule = Rule(
    code="SM112",
    name="detach-partition-blocks-everything",
    severity=Risk.RISKY,
    doc=__doc__,
    kinds=(Kind.BLOCKS_TRAFFIC,),
)

#: The first major version with ``DETACH PARTITION … CONCURRENTLY``.
CONCURRENT_SINCE = 14


@rule.on_statement(ast.AlterTableStmt)
def check(node: ast.AlterTableStmt, ctx: StatementContext) -> Iterator[Hit]:
    table = relation_name(node.relation)
    for cmd in alter_commands(node):
        if cmd.subtype != AlterTableType.AT_DetachPartition:
            continue
        partition = cmd.def_
        if not isinstance(partition, ast.PartitionCmd) or partition.concurrent:
            continue
        name = relation_name(partition.name) or "the partition"
        on = table or "the partitioned table"
        yield Hit(
            message=(
                f"DETACH PARTITION {name} takes an ACCESS EXCLUSIVE lock on {on}: it waits for "
                "the queries running on the table, and every query after it, reads included, "
                "waits behind it."
            ),
            hint=_hint(node, cmd, on, ctx),
            table=table,
            lock=LockMode.ACCESS_EXCLUSIVE,
            rewrites_table=False,
        )


def _hint(node: ast.AlterTableStmt, cmd: ast.AlterTableCmd, on: str, ctx: StatementContext) -> str:
    version = ctx.migration.pg_version
    if version < CONCURRENT_SINCE:
        return (
            f"PostgreSQL {version} has no DETACH PARTITION ... CONCURRENTLY (it came in "
            f"{CONCURRENT_SINCE}): detach at a time when no long transaction uses {on}; on "
            f"PostgreSQL {CONCURRENT_SINCE} or later, detach it concurrently."
        )
    catalog = ctx.migration.catalog
    default = catalog.has_default_partition(on) if catalog is not None else None
    if default:
        return (
            f"DETACH PARTITION ... CONCURRENTLY would let reads and writes through, but "
            f"PostgreSQL refuses it while {on} has a default partition, as it has on this "
            f"database: detach at a time when no long transaction uses {on}."
        )
    return (
        f"Detach it concurrently: migrations.RunSQL('{_with(node, cmd, concurrent=True)}') in "
        "a migration with atomic = False, alone in its RunSQL (PostgreSQL refuses it inside a "
        f"transaction block). It takes SHARE UPDATE EXCLUSIVE on {on}, which lets reads and "
        "writes through, and waits for the transactions that use the table. It is refused "
        "while the table has a default partition; if it is interrupted, finish it with "
        f"{_with(node, cmd, finalize=True)}."
    )


def _with(
    node: ast.AlterTableStmt,
    cmd: ast.AlterTableCmd,
    *,
    concurrent: bool = False,
    finalize: bool = False,
) -> str:
    """The statement, its detach made ``CONCURRENTLY`` or ``FINALIZE``."""
    changed = copy.deepcopy(cmd)
    partition = changed.def_
    assert isinstance(partition, ast.PartitionCmd)  # checked by the caller
    partition.concurrent = concurrent
    if finalize:
        changed.subtype = AlterTableType.AT_DetachPartitionFinalize
    statement = copy.deepcopy(node)
    statement.cmds = (changed,)
    return str(RawStream()(statement))
