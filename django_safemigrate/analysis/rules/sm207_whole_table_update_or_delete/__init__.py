"""An UPDATE or DELETE whose WHERE does not pick rows by key touches every matching row in one
transaction.

``RunSQL("UPDATE shop_order SET status = 'new'")`` writes a new version of every
row of the table in one statement: it holds a row lock on each of them until
the migration commits (so every concurrent write to any of those rows waits),
doubles the table on disk until vacuum catches up, and on a large table runs
for minutes. A ``DELETE`` without ``WHERE`` does the same and, on top, removes
every row: the data is gone once it commits.

A ``WHERE`` on an ordinary column changes none of that:
``UPDATE shop_item SET flag = 0 WHERE flag IS NULL`` or
``DELETE FROM log WHERE created < now() - interval '30 days'`` may match every
row, and does, in one transaction. A ``WHERE`` counts as bounding the rows only
when it picks them by key, at most 10,000 of them:

- an equality (``id = 5``, ``(shop, code) = (1, 'a')``), an ``IN`` list or
  ``= ANY(ARRAY[…])`` (also a parameter list, ``= ANY(%s)``), or a closed range
  with integer ends (``id BETWEEN 1 AND 1000``, ``id >= 1 AND id < 1001``) on
  a key of the table: its primary key, a unique column or the columns of a
  unique constraint (all of them), or ``ctid``. An open range (``id > 100``)
  does not bound;
- ``key IN (SELECT … LIMIT n)`` or ``= ANY(ARRAY(SELECT … LIMIT n))``, also
  through a ``WITH`` query or a ``VALUES`` list
  (``WITH batch AS (SELECT id … LIMIT 1000) UPDATE … WHERE id IN (SELECT id
  FROM batch)``), and a join on the key with such a bounded ``FROM`` / ``USING``
  item (``UPDATE … FROM (VALUES …) AS v(id, x) WHERE t.id = v.id``);
- an ``AND`` is bounded when one of its terms is, or when its terms together
  fix every column of a key; an ``OR`` only when every term is; ``NOT`` never.
  A join on an ordinary table bounds nothing: the table's own filter is judged.

The keys come from the project state before the operation (primary key,
``unique=True``, ``unique_together``, unconditional ``UniqueConstraint``) and,
when ``checkmigrations`` reads the database the migration is applied to, from
its valid unique indexes without predicate or expression. For a table that is
no model's and that no live database describes, only ``ctid`` is a known key:
the finding says so.

SQL written by hand (``RunSQL``, also on the database side of
``SeparateDatabaseAndState``) and the SQL Django renders are judged alike: an
``AlterField`` that makes a nullable column NOT NULL with a default renders
``UPDATE … SET col = <default> WHERE col IS NULL``, which rewrites every NULL row
in the migration's transaction. Data-modifying ``WITH`` clauses count too
(``WITH moved AS (DELETE FROM t RETURNING *) INSERT …``).

Safe alternative for an UPDATE: ``Backfill``, which walks the primary key in
short batches, each its own transaction, and resumes where a crash stopped it::

    from django.db.models import Q
    from django_safemigrate import Backfill

    class Migration(migrations.Migration):
        operations = [
            Backfill("item", set={"flag": 0}, where=Q(flag__isnull=True)),
        ]

For a DELETE (``Backfill`` only updates), delete in batches from a
``RunPython`` of a migration with ``atomic = False``, where each statement
commits on its own::

    def purge(apps, schema_editor):
        with schema_editor.connection.cursor() as cursor:
            while True:
                cursor.execute(
                    "DELETE FROM log WHERE ctid = ANY(ARRAY("
                    "SELECT ctid FROM log WHERE created < now() - interval '30 days' "
                    "LIMIT 1000))"
                )
                if cursor.rowcount == 0:
                    break

When emptying the table is the point, say so in the migration:
``safemigrate_acknowledge = {"SM207": "<why>"}``.

A DELETE without ``WHERE`` is destructive and blocks however small the table
(a small table still loses its rows). Every other finding of this rule is risky,
a DELETE with a ``WHERE`` included (it removes the rows it means to). None blocks
on a table created in the same migration (it is empty), and the risky ones do
not block on a table known to be small.

https://www.postgresql.org/docs/current/sql-update.html
https://www.postgresql.org/docs/current/routine-vacuuming.html
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

from pglast import ast
from pglast.stream import maybe_double_quote_name

from django_safemigrate.analysis.context import StatementContext
from django_safemigrate.analysis.findings import Hit
from django_safemigrate.analysis.pgtree import relation_name
from django_safemigrate.analysis.registry import Rule
from django_safemigrate.analysis.rules.sm207_whole_table_update_or_delete.bounds import (
    Ctes,
    Target,
    column_refs,
    deparse,
    most_rows,
    walk,
    with_queries,
)
from django_safemigrate.analysis.rules.sm207_whole_table_update_or_delete.expressions import (
    Expressions,
    quote,
)
from django_safemigrate.analysis.rules.sm207_whole_table_update_or_delete.keys import Table
from django_safemigrate.enums import Kind, LockMode, Risk

rule = Rule(
    code="SM207",
    name="whole-table-update-or-delete",
    severity=Risk.RISKY,
    doc=__doc__,
    kinds=(Kind.BLOCKS_TRAFFIC,),
)

#: The most rows a key filter may let through and still count as one short batch.
MAX_BOUNDED_ROWS = 10_000

BATCHES = (
    "in batches by primary key, each in its own transaction (a migration with atomic = False "
    "whose RunPython loops: ids = list(Model.objects.filter(pk__gt=last).order_by('pk')"
    ".values_list('pk', flat=True)[:1000]); Model.objects.filter(pk__in=ids).{action}; "
    "last = ids[-1])"
)


@rule.on_statement(ast.UpdateStmt, ast.DeleteStmt, ast.InsertStmt, ast.SelectStmt)
def check(node: Any, ctx: StatementContext) -> Iterator[Hit]:
    for stmt, ctes in _modifying(node, {}):
        table = relation_name(stmt.relation)
        if table is None:
            continue
        if stmt.whereClause is None:
            yield _whole_table(stmt, table, ctx)
            continue
        known = Table.of(table, ctx)
        target = Target.of(stmt, table, known, ctes)
        rows = most_rows(stmt.whereClause, target)
        if rows is not None and rows <= MAX_BOUNDED_ROWS:
            continue
        yield _unbounded(stmt, target, rows, ctx)


def _modifying(node: Any, ctes: Ctes) -> Iterator[tuple[Any, Ctes]]:
    """The UPDATE and DELETE statements ``node`` runs, with the ``WITH`` queries they see.

    PostgreSQL allows data-modifying statements in ``WITH`` only at the top level
    of a statement, so these are all of them.
    """
    ctes = with_queries(node, ctes)
    if isinstance(node, ast.UpdateStmt | ast.DeleteStmt):
        yield node, ctes
    with_clause = getattr(node, "withClause", None)
    for cte in (with_clause.ctes if with_clause is not None else None) or ():
        if isinstance(cte, ast.CommonTableExpr):
            yield from _modifying(cte.ctequery, ctes)


# -- what the findings say --------------------------------------------------------------------


def _whole_table(stmt: Any, table: str, ctx: StatementContext) -> Hit:
    if isinstance(stmt, ast.UpdateStmt):
        target = Target.of(stmt, table, Table.of(table, ctx), {})
        batches = _update_hint(stmt, target, ctx)
        return Hit(
            message=(
                f"UPDATE {table} without WHERE rewrites every row in one transaction, "
                "holding a lock on each row until the migration commits."
            ),
            hint=f"Limit it with a WHERE clause to the rows that need it. {batches}",
            table=table,
            lock=LockMode.ROW_EXCLUSIVE,
            rewrites_table=True,
        )
    return Hit(
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
        kinds=(Kind.LOSES_DATA, Kind.BLOCKS_TRAFFIC),
        # An empty table loses nothing; a small one still loses its rows.
        blocking=not ctx.migration.is_new_table(table),
    )


def _unbounded(stmt: Any, target: Target, rows: int | None, ctx: StatementContext) -> Hit:
    table = target.table
    on = sorted(
        {
            column
            for ref, in_subquery in column_refs(stmt.whereClause)
            if not in_subquery and (column := target.column(ref))
        }
    )
    where = f"The WHERE of {_verb(stmt)} {table.name}" + (f" (on {', '.join(on)})" if on else "")
    if rows is not None:
        why = (
            f" to a batch (it lets up to {rows:,} rows through; at most "
            f"{MAX_BOUNDED_ROWS:,} count as bounded)"
        )
    elif table.known and len(table.keys) > 1:
        why = f" (no equality, IN list or short range on {table.describe_keys()})"
    elif table.known:
        why = f" ({table.name} has no primary key or unique index, so only ctid is a key)"
    else:
        asked = "" if ctx.migration.live else " and no live database was asked for its keys"
        why = (
            f" ({table.name} is the table of no model in the project state{asked}, so only "
            "ctid is a known key)"
        )
    action = "rewrites" if isinstance(stmt, ast.UpdateStmt) else "deletes"
    message = (
        f"{where} does not bound the rows by key{why}: the statement locks and {action} every "
        "matching row, up to the whole table, in one transaction, holding each row lock until "
        "the migration commits."
    )
    if isinstance(stmt, ast.UpdateStmt):
        hint = _update_hint(stmt, target, ctx)
    else:
        hint = _delete_hint(stmt, target)
    if not table.known:
        hint += (
            " If the filter is on a key of the table after all, acknowledge it: "
            "safemigrate_acknowledge = {'SM207': '<why>'}."
        )
    return Hit(
        message=message,
        hint=hint,
        table=table.name,
        lock=LockMode.ROW_EXCLUSIVE,
        rewrites_table=None,
    )


def _verb(stmt: Any) -> str:
    return "UPDATE" if isinstance(stmt, ast.UpdateStmt) else "DELETE FROM"


def _update_hint(stmt: ast.UpdateStmt, target: Target, ctx: StatementContext) -> str:
    table = target.table
    if not table.models:
        key = maybe_double_quote_name(table.primary_key) if table.primary_key else None
        key = key or "<its primary key>"
        if target.sources:
            key = f"{maybe_double_quote_name(target.qualifier)}.{key}"
        where = f"({deparse(stmt.whereClause)}) AND " if stmt.whereClause is not None else ""
        batch = (
            f"{_with_prefix(stmt, target)}{deparse(_without_where(stmt))} "
            f"WHERE {where}{key} > %s AND {key} <= %s"
        )
        return (
            f"Run it in batches. A Backfill needs a model, and {table.name} is the table of "
            "none: describe it with an unmanaged one (migrations.CreateModel(..., "
            f"options={{'managed': False, 'db_table': '{table.name}'}}) creates no table) and "
            "use Backfill, or update it key range after key range from a RunPython of a "
            f"migration with atomic = False, each range committing on its own: {batch}."
        )
    model = table.models[0]
    writer = Expressions(target, model.fields)
    assignments = ", ".join(
        f"{quote(writer.field(column))}: {value}" for column, value in writer.assignments(stmt)
    )
    call = f'Backfill("{model.name}", set={{{assignments}}}'
    if stmt.whereClause is not None:
        call += f", where={writer.condition(stmt.whereClause, top=True)}"
    call += ")"
    where = (
        ""
        if model.app_label == ctx.operation.app_label
        else f" in a migration of the {model.app_label} app (a Backfill names a model of its "
        "migration's app)"
    )
    hint = (
        f"Run it as a Backfill{where}, which walks the primary key in batches of 1000 rows, "
        f"each its own short transaction, and resumes where a crash stopped it: {call} "
        f"({'; '.join(writer.imports())})."
    )
    if writer.elided:
        hint += (
            " Write each ... by hand, as Django expressions"
            + (f" (Subquery(), Exists()) over {writer.elided}" if writer.elided != "-" else "")
            + "."
        )
    return hint


def _delete_hint(stmt: ast.DeleteStmt, target: Target) -> str:
    relation = deparse(stmt.relation)  # schema, name and alias, quoted where needed
    qualifier = f"{maybe_double_quote_name(target.qualifier)}." if target.sources else ""
    using = "".join(f", {deparse(item)}" for item in stmt.usingClause or ())
    batch = (
        f"{_with_prefix(stmt, target)}DELETE FROM {relation} WHERE ctid = ANY(ARRAY("
        f"SELECT {qualifier}ctid FROM {relation}{using} WHERE {deparse(stmt.whereClause)} "
        "LIMIT 1000))"
    )
    return (
        "Delete in batches from a RunPython of a migration with atomic = False, where each "
        "statement commits on its own (Backfill only updates): run "
        f"cursor.execute({quote(batch)}) again until cursor.rowcount is 0."
    )


def _with_prefix(stmt: Any, target: Target) -> str:
    """The ``WITH`` queries ``stmt`` uses, for a batch statement that needs them too."""
    used = [name for name in target.ctes if _uses_cte(stmt, name)]
    if not used:
        return ""
    recursive = " RECURSIVE" if any(target.ctes[name][1] for name in used) else ""
    return f"WITH{recursive} {', '.join(deparse(target.ctes[name][0]) for name in used)} "


def _uses_cte(node: Any, name: str) -> bool:
    return any(
        isinstance(found, ast.RangeVar) and not found.schemaname and found.relname == name
        for found, _ in walk(node, False)
    )


def _without_where(stmt: ast.UpdateStmt) -> ast.UpdateStmt:
    bare = copy.deepcopy(stmt)
    bare.whereClause = None
    bare.withClause = None
    bare.returningClause = None
    return bare
