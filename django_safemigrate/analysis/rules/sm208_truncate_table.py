"""TRUNCATE deletes every row of a table, with no way back once committed.

``TRUNCATE`` empties a table at once, without scanning it, under an ACCESS
EXCLUSIVE lock (reads wait too, if only briefly). With ``CASCADE`` it also
empties every table whose foreign keys point at it, which the statement does
not name. In a migration it runs on every environment the migration reaches,
production included, and the rows are gone once it commits.

Safe alternative: when the data must go, make sure nothing reads it any more,
back it up if it matters, and acknowledge it in the migration so a reviewer
sees why::

    class Migration(migrations.Migration):
        safemigrate_acknowledge = {"SM208": "cache table, rebuilt on demand"}
        operations = [
            migrations.RunSQL("TRUNCATE shop_pricecache", migrations.RunSQL.noop),
        ]

To remove only some rows, ``DELETE`` them with a ``WHERE`` clause, in batches by
primary key. A table created earlier in the same migration is empty: truncating
it is reported but does not block.

https://www.postgresql.org/docs/current/sql-truncate.html
"""

from __future__ import annotations

from collections.abc import Iterator

from pglast import ast
from pglast.enums import DropBehavior

from django_safemigrate.analysis.context import StatementContext
from django_safemigrate.analysis.findings import Hit
from django_safemigrate.analysis.pgtree import relation_name
from django_safemigrate.analysis.registry import Rule
from django_safemigrate.enums import Kind, LockMode, Risk

rule = Rule(
    code="SM208",
    name="truncate-table",
    severity=Risk.DESTRUCTIVE,
    doc=__doc__,
    kinds=(
        Kind.LOSES_DATA,
        Kind.BLOCKS_TRAFFIC,
    ),
)


@rule.on_statement(ast.TruncateStmt)
def check(node: ast.TruncateStmt, ctx: StatementContext) -> Iterator[Hit]:
    cascade = node.behavior == DropBehavior.DROP_CASCADE
    for relation in node.relations or ():
        table = relation_name(relation)
        also = ", and CASCADE empties every table that references it" if cascade else ""
        yield Hit(
            message=f"TRUNCATE {table} deletes every row of the table{also}.",
            hint=(
                "Make sure nothing needs these rows (back them up if they matter) and "
                "acknowledge it in the migration: safemigrate_acknowledge = {'SM208': '<why>'}; "
                "to remove only some rows, DELETE them with a WHERE clause, in batches by "
                "primary key."
            ),
            table=table,
            lock=LockMode.ACCESS_EXCLUSIVE,
            # A new, empty file replaces the table's: nothing is copied, whatever its size.
            rewrites_table=False,
            blocking=not ctx.migration.is_new_table(table),
        )
