"""Adding a UNIQUE, PRIMARY KEY or EXCLUDE constraint builds its index while reads and writes wait.

``ALTER TABLE … ADD CONSTRAINT … UNIQUE (…)`` (and ``PRIMARY KEY``,
``EXCLUDE``, or a new column declared ``UNIQUE``) builds the constraint's index
while holding ACCESS EXCLUSIVE on the table: neither reads nor writes get
through until the whole table is scanned and the index is built. A primary key
also sets its columns NOT NULL, another full scan under the same lock. Django
does this for ``AddConstraint(UniqueConstraint(fields=…))``,
``AlterUniqueTogether``, ``AlterField`` to ``unique=True`` and ``AddField``
with ``unique=True``.

Safe alternative: build the unique index first with ``CREATE UNIQUE INDEX
CONCURRENTLY`` (SHARE UPDATE EXCLUSIVE: traffic continues), then attach it with
``ADD CONSTRAINT … UNIQUE USING INDEX``, which only takes the lock for a moment.
In a migration with ``atomic = False``::

    class Migration(migrations.Migration):
        atomic = False
        operations = [
            migrations.SeparateDatabaseAndState(
                database_operations=[
                    migrations.RunSQL(
                        'CREATE UNIQUE INDEX CONCURRENTLY "order_ref_uniq" ON "shop_order" ("ref")',
                        reverse_sql='DROP INDEX CONCURRENTLY IF EXISTS "order_ref_uniq"',
                    ),
                    migrations.RunSQL(
                        'ALTER TABLE "shop_order" ADD CONSTRAINT "order_ref_uniq" '
                        'UNIQUE USING INDEX "order_ref_uniq"',
                        reverse_sql='ALTER TABLE "shop_order" DROP CONSTRAINT "order_ref_uniq"',
                    ),
                ],
                state_operations=[
                    migrations.AddConstraint(
                        "order", models.UniqueConstraint(fields=["ref"], name="order_ref_uniq")
                    ),
                ],
            ),
        ]

For a primary key, make the columns NOT NULL first (see SM106) and use
``PRIMARY KEY USING INDEX``. An ``EXCLUDE`` constraint cannot be attached to an
existing index: there is no online way to add one to a large table.
django-pg-zero-downtime-migrations emits the index-first sequence for UNIQUE
and PRIMARY KEY itself (not for EXCLUDE). Constraints of a table created in the
same migration are left alone: the table is empty.

https://www.postgresql.org/docs/current/sql-altertable.html#SQL-ALTERTABLE-DESC-ADD-TABLE-CONSTRAINT-USING-INDEX
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pglast import ast
from pglast.enums import AlterTableType, ConstrType

from django_safemigrate.analysis.context import StatementContext
from django_safemigrate.analysis.findings import Hit
from django_safemigrate.analysis.pgtree import alter_commands, relation_name
from django_safemigrate.analysis.registry import Rule
from django_safemigrate.enums import Kind, LockMode, Risk

rule = Rule(
    code="SM103",
    name="unique-constraint-builds-index-under-lock",
    severity=Risk.RISKY,
    doc=__doc__,
    kinds=(Kind.BLOCKS_TRAFFIC,),
)

_KINDS = {
    ConstrType.CONSTR_UNIQUE: "UNIQUE",
    ConstrType.CONSTR_PRIMARY: "PRIMARY KEY",
    ConstrType.CONSTR_EXCLUSION: "EXCLUDE",
}


@rule.on_statement(ast.AlterTableStmt)
def check(node: ast.AlterTableStmt, ctx: StatementContext) -> Iterator[Hit]:
    table = relation_name(node.relation)
    if table is None or ctx.migration.is_new_table(table):
        return
    for cmd in alter_commands(node):
        if cmd.subtype == AlterTableType.AT_AddConstraint and isinstance(cmd.def_, ast.Constraint):
            constraint = cmd.def_
            columns = _names(constraint.keys)
            new_column = False
        elif cmd.subtype == AlterTableType.AT_AddColumn and isinstance(cmd.def_, ast.ColumnDef):
            # ADD COLUMN … UNIQUE / PRIMARY KEY: the index is built on the spot too.
            inline = [c for c in cmd.def_.constraints or () if _kind(c) is not None]
            if not inline:
                continue
            constraint = inline[0]
            columns = [str(cmd.def_.colname)]
            new_column = True
        else:
            continue
        kind = _kind(constraint)
        if kind is None or constraint.indexname:
            continue  # not an index-backed constraint, or USING INDEX: attached, not built
        yield Hit(
            message=(
                f"ADD {kind} on {table} builds the constraint's index while holding an ACCESS "
                "EXCLUSIVE lock: reads and writes wait until the whole table is scanned and "
                "the index is built."
            ),
            hint=_hint(kind, table, constraint, columns, new_column=new_column),
            table=table,
            lock=LockMode.ACCESS_EXCLUSIVE,
            rewrites_table=False,
        )


def _kind(constraint: Any) -> str | None:
    if not isinstance(constraint, ast.Constraint) or constraint.contype is None:
        return None
    return _KINDS.get(ConstrType(constraint.contype))


def _names(nodes: Any) -> list[str]:
    return [str(n.sval) for n in nodes or () if isinstance(n, ast.String)]


def _hint(
    kind: str, table: str, constraint: ast.Constraint, columns: list[str], *, new_column: bool
) -> str:
    if kind == "EXCLUDE":
        return (
            "PostgreSQL cannot attach an EXCLUDE constraint to an index built beforehand, so "
            "there is no online way to add it: add it while the table is small, or in a "
            "maintenance window, and acknowledge this finding with the reason."
        )
    name = constraint.conname
    if name is None:
        # PostgreSQL's own names for an unnamed constraint.
        name = f"{table}_pkey" if kind == "PRIMARY KEY" else f"{table}_{'_'.join(columns)}_key"
    cols = ", ".join(f'"{c}"' for c in columns) or "..."
    nulls = " NULLS NOT DISTINCT" if constraint.nulls_not_distinct else ""
    deferrable = ""
    if constraint.deferrable:
        deferrable = " DEFERRABLE INITIALLY DEFERRED" if constraint.initdeferred else " DEFERRABLE"
    steps = (
        "build the index concurrently, then attach it, in a migration with atomic = False: "
        "SeparateDatabaseAndState(database_operations=["
        f'RunSQL(\'CREATE UNIQUE INDEX CONCURRENTLY "{name}" ON "{table}" ({cols}){nulls}\'), '
        f'RunSQL(\'ALTER TABLE "{table}" ADD CONSTRAINT "{name}" {kind} USING INDEX '
        f'"{name}"{deferrable}\')], state_operations=[<this operation>]).'
    )
    if new_column:
        return f"Add the column without {kind} first (AddField with unique=False); then {steps}"
    if kind == "PRIMARY KEY":
        return f"Make the columns NOT NULL without a scan first (see SM106); then {steps}"
    return steps[0].upper() + steps[1:]
