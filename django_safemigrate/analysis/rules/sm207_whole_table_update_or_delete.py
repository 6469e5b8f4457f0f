"""An UPDATE or DELETE without WHERE in hand-written SQL touches every row in one transaction.

``RunSQL("UPDATE shop_order SET status = 'new'")`` writes a new version of every
row of the table in one statement: it holds a row lock on each of them until
the migration commits (so every concurrent write to any row waits), doubles the
table on disk until vacuum catches up, and on a large table runs for minutes.
A ``DELETE`` without ``WHERE`` does the same and, on top, removes every row:
the data is gone once it commits.

Only SQL written by hand (``RunSQL``, also on the database side of
``SeparateDatabaseAndState``) is judged: Django's own statements scope their
UPDATEs. Data-modifying ``WITH`` clauses count too
(``WITH moved AS (DELETE FROM t RETURNING *) INSERT …``).

Safe alternative: touch only the rows that need it (a ``WHERE`` clause), and
update in batches by primary key, each in its own transaction, in a migration
with ``atomic = False``::

    def backfill(apps, schema_editor):
        Order = apps.get_model("shop", "Order")
        last = 0
        while ids := list(
            Order.objects.filter(pk__gt=last).order_by("pk").values_list("pk", flat=True)[:1000]
        ):
            Order.objects.filter(pk__in=ids).update(status="new")
            last = ids[-1]

    class Migration(migrations.Migration):
        atomic = False
        operations = [migrations.RunPython(backfill, migrations.RunPython.noop)]

When emptying the table is the point, say so in the migration:
``safemigrate_acknowledge = {"SM207": "<why>"}``.

Both are reported but do not block on a table created in the same migration
(it is empty); an UPDATE of a table known to be small does not block either.

https://www.postgresql.org/docs/current/sql-update.html
https://www.postgresql.org/docs/current/routine-vacuuming.html
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pglast import ast

from django_safemigrate.analysis.context import StatementContext
from django_safemigrate.analysis.findings import Hit
from django_safemigrate.analysis.pgtree import relation_name
from django_safemigrate.analysis.registry import Rule
from django_safemigrate.enums import LockMode, Risk

rule = Rule(code="SM207", name="whole-table-update-or-delete", severity=Risk.RISKY, doc=__doc__)

BATCHES = (
    "in batches by primary key, each in its own transaction (a migration with atomic = False "
    "whose RunPython loops: ids = list(Model.objects.filter(pk__gt=last).order_by('pk')"
    ".values_list('pk', flat=True)[:1000]); Model.objects.filter(pk__in=ids).{action}; "
    "last = ids[-1])"
)


@rule.on_statement(ast.UpdateStmt, ast.DeleteStmt, ast.InsertStmt, ast.SelectStmt)
def check(node: Any, ctx: StatementContext) -> Iterator[Hit]:
    if not ctx.statement.handwritten:
        return
    for stmt in _modifying(node):
        if stmt.whereClause is not None:
            continue
        table = relation_name(stmt.relation)
        if isinstance(stmt, ast.UpdateStmt):
            yield Hit(
                message=(
                    f"UPDATE {table} without WHERE rewrites every row in one transaction, "
                    "holding a lock on each row until the migration commits."
                ),
                hint=(
                    "Limit it with a WHERE clause to the rows that need it, and update "
                    + BATCHES.format(action="update(...)")
                    + "."
                ),
                table=table,
                lock=LockMode.ROW_EXCLUSIVE,
                rewrites_table=True,
            )
        else:
            yield Hit(
                message=(
                    f"DELETE FROM {table} without WHERE deletes every row of the table, holding "
                    "a lock on each row until the migration commits."
                ),
                hint=(
                    "Limit it with a WHERE clause to the rows that must go, and delete "
                    + BATCHES.format(action="delete()")
                    + "; when emptying the table is the point, acknowledge it: "
                    "safemigrate_acknowledge = {'SM207': '<why>'}."
                ),
                table=table,
                lock=LockMode.ROW_EXCLUSIVE,
                rewrites_table=False,
                severity=Risk.DESTRUCTIVE,
                # An empty table loses nothing; a small one still loses its rows.
                blocking=not ctx.migration.is_new_table(table),
            )


def _modifying(node: Any) -> Iterator[Any]:
    """The UPDATE and DELETE statements ``node`` runs: itself, and its ``WITH`` clauses.

    PostgreSQL allows data-modifying statements in ``WITH`` only at the top level
    of a statement, so these are all of them.
    """
    if isinstance(node, ast.UpdateStmt | ast.DeleteStmt):
        yield node
    with_clause = getattr(node, "withClause", None)
    for cte in (with_clause.ctes if with_clause is not None else None) or ():
        if isinstance(cte, ast.CommonTableExpr):
            yield from _modifying(cte.ctequery)
