"""Adding a foreign key blocks writes to both tables while it checks every row.

``ALTER TABLE … ADD CONSTRAINT … FOREIGN KEY … REFERENCES …`` takes SHARE ROW
EXCLUSIVE on the referencing table and on the referenced one, then scans the
referencing table to check that every value has its row: INSERT, UPDATE and
DELETE on both tables wait for the whole scan (and ``ADD COLUMN … REFERENCES``
holds ACCESS EXCLUSIVE on the referencing table, so reads wait too). Django
adds foreign keys this way in ``AlterField`` (to a ``ForeignKey``, or back to
``db_constraint=True``), and in ``AddField`` of a ``ForeignKey`` with a
default.

``AddField`` of a nullable ``ForeignKey`` without a default is not reported:
PostgreSQL skips the check when a new column is all NULL, and takes the lock on
the referenced table only for a moment (checked on PostgreSQL 15 with
``pg_stat_get_xact_numscans``). A foreign key of a table created in the same
migration is left alone too.

``ADD CONSTRAINT … NOT VALID`` skips the scan; ``VALIDATE CONSTRAINT`` later
scans under SHARE UPDATE EXCLUSIVE (and ROW SHARE on the referenced table),
which lets reads and writes through. That only helps if the two run in
different transactions: a ``VALIDATE`` in the same transaction as its ``ADD …
NOT VALID`` scans while both tables are still locked, and this rule reports it.

Safe alternative: add the constraint ``NOT VALID``, validate it in a later
migration (or later in one with ``atomic = False``)::

    # 0007: brief locks, no scan
    migrations.SeparateDatabaseAndState(
        database_operations=[
            migrations.RunSQL(
                'ALTER TABLE "shop_order" ADD CONSTRAINT "order_customer_fk" '
                'FOREIGN KEY ("customer_id") REFERENCES "shop_customer" ("id") '
                "DEFERRABLE INITIALLY DEFERRED NOT VALID",
                reverse_sql='ALTER TABLE "shop_order" DROP CONSTRAINT "order_customer_fk"',
            ),
        ],
        state_operations=[
            migrations.AlterField(
                "order", "customer", models.ForeignKey("shop.Customer", models.PROTECT)
            ),
        ],
    )

    # 0008: scans, but reads and writes go on
    migrations.RunSQL('ALTER TABLE "shop_order" VALIDATE CONSTRAINT "order_customer_fk"')

django-pg-zero-downtime-migrations emits ``NOT VALID`` then ``VALIDATE`` itself
and runs them outside a transaction.

https://www.postgresql.org/docs/current/sql-altertable.html#SQL-ALTERTABLE-NOTES
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, TypeGuard

from pglast import ast
from pglast.enums import AlterTableType, ConstrType
from pglast.stream import RawStream

from django_safemigrate.analysis.context import StatementContext
from django_safemigrate.analysis.findings import Hit
from django_safemigrate.analysis.pgtree import (
    alter_commands,
    is_not_valid,
    relation_name,
    validated_in_same_block,
)
from django_safemigrate.analysis.registry import Rule
from django_safemigrate.enums import Kind, LockMode, Risk

rule = Rule(
    code="SM105",
    name="foreign-key-scans-and-locks-both-tables",
    severity=Risk.RISKY,
    doc=__doc__,
    kinds=(Kind.BLOCKS_TRAFFIC,),
)


@rule.on_statement(ast.AlterTableStmt)
def check(node: ast.AlterTableStmt, ctx: StatementContext) -> Iterator[Hit]:
    table = relation_name(node.relation)
    if table is None or ctx.migration.is_new_table(table):
        return
    for cmd in alter_commands(node):
        if cmd.subtype == AlterTableType.AT_AddConstraint and _is_foreign_key(cmd.def_):
            constraint = cmd.def_
            if not is_not_valid(constraint):
                yield _scan_hit(table, constraint)
            elif constraint.conname:
                yield from _validated_in_same_transaction(table, constraint, ctx)
        elif cmd.subtype == AlterTableType.AT_AddColumn and isinstance(cmd.def_, ast.ColumnDef):
            column = cmd.def_
            inline = [c for c in column.constraints or () if _is_foreign_key(c)]
            # PostgreSQL skips the check of a new column that is all NULL (no default).
            if inline and _has_default(column):
                yield _new_column_hit(table, column, inline[0])


def _is_foreign_key(node: object) -> TypeGuard[ast.Constraint]:
    return isinstance(node, ast.Constraint) and node.contype == ConstrType.CONSTR_FOREIGN


def _has_default(column: ast.ColumnDef) -> bool:
    for constraint in column.constraints or ():
        if (
            isinstance(constraint, ast.Constraint)
            and constraint.contype == ConstrType.CONSTR_DEFAULT
        ):
            value = constraint.raw_expr
            return not (isinstance(value, ast.A_Const) and value.isnull)
    return False


def _names(nodes: Any) -> str:
    return ", ".join(f'"{n.sval}"' for n in nodes or () if isinstance(n, ast.String))


def _referenced(constraint: ast.Constraint) -> str:
    return relation_name(constraint.pktable) or "the referenced table"


def _scan_hit(table: str, constraint: ast.Constraint) -> Hit:
    referenced = _referenced(constraint)
    name = str(constraint.conname or f"{table}_fkey")
    definition = RawStream()(constraint)
    if not constraint.conname:
        definition = f"CONSTRAINT {name} {definition}"
    add = f"RunSQL('ALTER TABLE \"{table}\" ADD {definition} NOT VALID')"
    return Hit(
        message=(
            f"ADD FOREIGN KEY {name} takes SHARE ROW EXCLUSIVE locks on {table} and "
            f"{referenced} and scans {table} to check every row: writes to both tables wait "
            "until the scan ends."
        ),
        hint=(
            f"Add it NOT VALID: SeparateDatabaseAndState(database_operations=[{add}], "
            "state_operations=[<this operation>]); then "
            f'RunSQL(\'ALTER TABLE "{table}" VALIDATE CONSTRAINT "{name}"\') in a later '
            "migration (or later in this one, if it has atomic = False), where the scan lets "
            "reads and writes through. django-pg-zero-downtime-migrations does this itself."
        ),
        table=table,
        lock=LockMode.SHARE_ROW_EXCLUSIVE,
        rewrites_table=False,
    )


def _new_column_hit(table: str, column: ast.ColumnDef, constraint: ast.Constraint) -> Hit:
    referenced = _referenced(constraint)
    name = str(constraint.conname or f"{table}_{column.colname}_fkey")
    target = _names(constraint.pk_attrs)
    references = f'REFERENCES "{referenced}"' + (f" ({target})" if target else "")
    return Hit(
        message=(
            f"ADD COLUMN {column.colname} with a default and a foreign key to {referenced} "
            f"holds an ACCESS EXCLUSIVE lock on {table} and SHARE ROW EXCLUSIVE on "
            f"{referenced} while it checks every row: reads and writes on {table}, and "
            f"writes on {referenced}, wait until the scan ends."
        ),
        hint=(
            "Add the column nullable without a default and without the constraint "
            "(ForeignKey(..., null=True, db_constraint=False)), fill it in batches, then "
            "add the constraint NOT VALID: SeparateDatabaseAndState(database_operations=["
            f'RunSQL(\'ALTER TABLE "{table}" ADD CONSTRAINT "{name}" FOREIGN KEY '
            f'("{column.colname}") {references} DEFERRABLE INITIALLY DEFERRED NOT VALID\')], '
            "state_operations=[AlterField(..., ForeignKey(...))]) and VALIDATE it in a later "
            "migration."
        ),
        table=table,
        lock=LockMode.ACCESS_EXCLUSIVE,
        rewrites_table=False,
    )


def _validated_in_same_transaction(
    table: str, constraint: ast.Constraint, ctx: StatementContext
) -> Iterator[Hit]:
    """``ADD … NOT VALID`` whose ``VALIDATE`` runs later in the same transaction block."""
    name = str(constraint.conname)
    why = validated_in_same_block(table, name, ctx)
    if why is None:
        return
    referenced = _referenced(constraint)
    yield Hit(
        message=(
            f"Foreign key {name} on {table} is added NOT VALID but validated in the "
            f"same transaction ({why}), so the validation scan runs while the "
            f"SHARE ROW EXCLUSIVE locks on {table} and {referenced} are still held: "
            "writes to both tables wait for the whole scan."
        ),
        hint=(
            f'Move RunSQL(\'ALTER TABLE "{table}" VALIDATE CONSTRAINT "{name}"\') to '
            "a later migration, or set atomic = False on this one and give each "
            "statement its own RunSQL."
        ),
        table=table,
        lock=LockMode.SHARE_ROW_EXCLUSIVE,
        rewrites_table=False,
    )
