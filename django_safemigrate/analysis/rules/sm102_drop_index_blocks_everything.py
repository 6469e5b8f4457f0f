"""Dropping an index without CONCURRENTLY locks its table against reads and writes.

``DROP INDEX`` takes an ACCESS EXCLUSIVE lock on the index's table. The drop
itself is quick, but the lock request waits for every running query on the
table to finish, and every query that arrives after it, reads included, queues
behind the waiting ``DROP``: one long transaction on the table turns a quick
drop into an outage (checked on PostgreSQL 15: a plain ``SELECT`` on the table
waits while the ``DROP INDEX`` transaction is open). Django drops indexes this
way for ``RemoveIndex``, for ``AlterField`` that removes ``db_index=True``, for
``AlterIndexTogether`` and for ``RemoveConstraint`` of a constraint built as an
index.

``DROP INDEX CONCURRENTLY`` takes SHARE UPDATE EXCLUSIVE on the table instead,
which lets reads and writes through; it waits for the transactions using the
index to end, and cannot run inside a transaction block (nor drop several
indexes at once, nor ``CASCADE``).

Safe alternative, in a migration with ``atomic = False``::

    from django.contrib.postgres.operations import RemoveIndexConcurrently

    class Migration(migrations.Migration):
        atomic = False
        operations = [RemoveIndexConcurrently("order", "order_created_idx")]

For a field's ``db_index``, change the model state and drop the index by hand::

    migrations.SeparateDatabaseAndState(
        state_operations=[migrations.AlterField("order", "created", models.DateTimeField())],
        database_operations=[
            migrations.RunSQL('DROP INDEX CONCURRENTLY IF EXISTS "shop_order_created_0b6e5a4c"'),
        ],
    )

django-pg-zero-downtime-migrations emits ``DROP INDEX CONCURRENTLY`` itself.
An index of a table created in the same migration, or of a small table, is
reported but does not block.

https://www.postgresql.org/docs/current/sql-dropindex.html
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.db.backends.utils import truncate_name
from pglast import ast
from pglast.enums import ObjectType

from django_safemigrate.analysis.context import StatementContext
from django_safemigrate.analysis.findings import Hit
from django_safemigrate.analysis.registry import Rule
from django_safemigrate.enums import Kind, LockMode, Risk

rule = Rule(
    code="SM102",
    name="drop-index-blocks-everything",
    severity=Risk.RISKY,
    doc=__doc__,
    kinds=(Kind.BLOCKS_TRAFFIC,),
)


@rule.on_statement(ast.DropStmt)
def check(node: ast.DropStmt, ctx: StatementContext) -> Iterator[Hit]:
    if node.removeType != ObjectType.OBJECT_INDEX or node.concurrent:
        return
    names = [name for obj in node.objects or () if (name := _last_name(obj))]
    table = _table_of_index(names, ctx)
    on = f" on {table}" if table else ""
    listed = ", ".join(names) or "the index"
    drops = [f"migrations.RunSQL('DROP INDEX CONCURRENTLY IF EXISTS \"{n}\"')" for n in names]
    yield Hit(
        message=(
            f"DROP INDEX {listed} takes an ACCESS EXCLUSIVE lock{on}: it waits for the "
            "queries running on the table, and every query after it, reads included, "
            "waits behind it."
        ),
        hint=(
            "Drop it with django.contrib.postgres.operations.RemoveIndexConcurrently in a "
            "migration with atomic = False; for a field's db_index or handwritten SQL, use "
            "SeparateDatabaseAndState with "
            f"{', '.join(drops) or 'RunSQL(DROP INDEX CONCURRENTLY ...)'} as the database "
            "side (one index per statement)."
        ),
        table=table,
        lock=LockMode.ACCESS_EXCLUSIVE,
        rewrites_table=False,
    )


def _last_name(obj: Any) -> str | None:
    """``schema.index`` (a list of ``String``) → ``index``."""
    parts = [str(p.sval) for p in obj or () if isinstance(p, ast.String)]
    return parts[-1] if parts else None


def _table_of_index(names: list[str], ctx: StatementContext) -> str | None:
    """The table of the dropped index, from the operation or the project state."""
    operation = ctx.operation.operation
    model_name = getattr(operation, "model_name", None) or getattr(operation, "name", None)
    if isinstance(model_name, str):
        table = ctx.operation.table_of(model_name)
        if table:
            return table
    state = ctx.operation.from_state or ctx.migration.state_before
    if not names:
        return None
    catalog = ctx.migration.catalog
    if catalog is not None:
        for name in names:
            live = catalog.table_of_index(name)
            if live:
                return live
    if state is None:
        return None
    tables = []
    for (app_label, model_name), model_state in state.models.items():
        options = model_state.options
        # Options.db_table's default, without rendering every model of the state.
        default = truncate_name(
            f"{app_label}_{model_name}", ctx.migration.connection.ops.max_name_length()
        )
        table = str(options.get("db_table") or default)
        declared = [*options.get("indexes", ()), *options.get("constraints", ())]
        if any(getattr(index, "name", None) in names for index in declared):
            return table
        tables.append(table)
    # The names Django makes up for field indexes (db_index, unique's _like, foreign keys)
    # begin with the table's name: the longest table name that prefixes one.
    prefixed = [t for t in tables if any(n.startswith(f"{t}_") for n in names)]
    return max(prefixed, key=len, default=None)
