"""Building an index without CONCURRENTLY blocks writes to the table until it is built.

``CREATE INDEX`` takes a SHARE lock on the table: reads go on, but every INSERT,
UPDATE and DELETE waits until the whole index is built, which on a large table
takes minutes. Django builds indexes this way for ``AddIndex``, for fields with
``db_index=True``, for ``unique=True`` lookups' ``_like`` indexes and for the
index behind every ``ForeignKey``.

``CREATE INDEX CONCURRENTLY`` takes SHARE UPDATE EXCLUSIVE instead, which lets
writes through; it scans the table twice and cannot run inside a transaction.

Safe alternative: use ``AddIndexConcurrently`` from
``django.contrib.postgres.operations`` in a migration with ``atomic = False``,
or for a field index, ``SeparateDatabaseAndState`` with a
``RunSQL("CREATE INDEX CONCURRENTLY …")`` on the database side.

An index on a table created in the same migration (or missing from the
connected database) is reported but does not block: the table is empty.

https://www.postgresql.org/docs/current/sql-createindex.html#SQL-CREATEINDEX-CONCURRENTLY
"""

from __future__ import annotations

from collections.abc import Iterator

from pglast import ast

from django_safemigrate.analysis.context import StatementContext
from django_safemigrate.analysis.findings import Hit
from django_safemigrate.analysis.pgtree import relation_name
from django_safemigrate.analysis.registry import Rule
from django_safemigrate.enums import Kind, LockMode, Risk

rule = Rule(
    code="SM101",
    name="add-index-blocks-writes",
    severity=Risk.RISKY,
    doc=__doc__,
    kinds=(Kind.BLOCKS_TRAFFIC,),
)


@rule.on_statement(ast.IndexStmt)
def check(node: ast.IndexStmt, ctx: StatementContext) -> Iterator[Hit]:
    if node.concurrent:
        return
    table = relation_name(node.relation)
    yield Hit(
        message=(
            f"CREATE INDEX {node.idxname or ''} on {table} takes a SHARE lock: writes to the "
            "table wait until the whole index is built."
        ).replace("INDEX  on", "INDEX on"),
        hint=(
            "Build it with django.contrib.postgres.operations.AddIndexConcurrently in a "
            "migration with atomic = False (for a field's db_index: SeparateDatabaseAndState "
            "with RunSQL('CREATE INDEX CONCURRENTLY ...') as the database side)."
        ),
        table=table,
        lock=LockMode.SHARE,
        rewrites_table=False,
    )
