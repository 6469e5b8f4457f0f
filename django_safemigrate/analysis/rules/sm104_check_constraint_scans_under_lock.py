"""Adding a CHECK constraint scans the whole table under an ACCESS EXCLUSIVE lock.

``ALTER TABLE … ADD CONSTRAINT … CHECK (…)`` takes ACCESS EXCLUSIVE on the
table and then reads every row to prove the condition holds: reads and writes
wait for the whole scan. Django does this for ``AddConstraint(CheckConstraint(…))``
and, with the check written into the column, for ``AddField`` of a
``PositiveIntegerField`` and its kin (``ADD COLUMN … CHECK ("x" >= 0)``): even
though the new column is all NULL, PostgreSQL still scans the table (checked on
PostgreSQL 15 with ``pg_stat_get_xact_numscans``).

``ADD CONSTRAINT … NOT VALID`` skips the scan (the lock is held only for a
moment, and new rows are checked from then on); ``VALIDATE CONSTRAINT`` later
scans under SHARE UPDATE EXCLUSIVE, which lets reads and writes through. That
only helps if the two run in different transactions: a ``VALIDATE`` in the same
transaction as its ``ADD … NOT VALID`` (an atomic migration, or one ``RunSQL``
string holding both) scans while the ACCESS EXCLUSIVE lock is still held, and
this rule reports that too.

Safe alternative: add the constraint ``NOT VALID`` and validate it in a later
migration (or later in one with ``atomic = False``)::

    # 0007: brief lock, no scan
    migrations.SeparateDatabaseAndState(
        database_operations=[
            migrations.RunSQL(
                'ALTER TABLE "shop_order" ADD CONSTRAINT "order_total_positive" '
                'CHECK ("total" >= 0) NOT VALID',
                reverse_sql='ALTER TABLE "shop_order" DROP CONSTRAINT "order_total_positive"',
            ),
        ],
        state_operations=[
            migrations.AddConstraint(
                "order",
                models.CheckConstraint(condition=Q(total__gte=0), name="order_total_positive"),
            ),
        ],
    )

    # 0008: scans, but reads and writes go on
    migrations.RunSQL('ALTER TABLE "shop_order" VALIDATE CONSTRAINT "order_total_positive"')

django-pg-zero-downtime-migrations emits ``NOT VALID`` then ``VALIDATE`` for
``AddConstraint`` and runs them outside a transaction; it does not for the check
of a new ``PositiveIntegerField``. Checks of a table created in the same
migration are left alone: the table is empty.

https://www.postgresql.org/docs/current/sql-altertable.html#SQL-ALTERTABLE-NOTES
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TypeGuard

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
from django_safemigrate.enums import LockMode, Risk

rule = Rule(
    code="SM104", name="check-constraint-scans-under-lock", severity=Risk.RISKY, doc=__doc__
)


@rule.on_statement(ast.AlterTableStmt)
def check(node: ast.AlterTableStmt, ctx: StatementContext) -> Iterator[Hit]:
    table = relation_name(node.relation)
    if table is None or ctx.migration.is_new_table(table):
        return
    for cmd in alter_commands(node):
        if cmd.subtype == AlterTableType.AT_AddConstraint and _is_check(cmd.def_):
            constraint = cmd.def_
            if not is_not_valid(constraint):
                yield _scan_hit(table, constraint, column=None)
            elif constraint.conname:
                yield from _validated_in_same_transaction(table, str(constraint.conname), ctx)
        elif cmd.subtype == AlterTableType.AT_AddColumn and isinstance(cmd.def_, ast.ColumnDef):
            for constraint in cmd.def_.constraints or ():
                if _is_check(constraint) and not is_not_valid(constraint):
                    yield _scan_hit(table, constraint, column=str(cmd.def_.colname))


def _is_check(node: object) -> TypeGuard[ast.Constraint]:
    return isinstance(node, ast.Constraint) and node.contype == ConstrType.CONSTR_CHECK


def _scan_hit(table: str, constraint: ast.Constraint, *, column: str | None) -> Hit:
    # PostgreSQL names an unnamed check after the table and (for a column's) the column.
    name = str(constraint.conname or "_".join(p for p in (table, column, "check") if p))
    condition = RawStream()(constraint.raw_expr) if constraint.raw_expr is not None else "..."
    add = f'RunSQL(\'ALTER TABLE "{table}" ADD CONSTRAINT "{name}" CHECK ({condition}) NOT VALID\')'
    validate = f'RunSQL(\'ALTER TABLE "{table}" VALIDATE CONSTRAINT "{name}"\')'
    if column is None:
        what = f"ADD CONSTRAINT {name} CHECK"
        first = (
            f"Add it NOT VALID: SeparateDatabaseAndState(database_operations=[{add}], "
            "state_operations=[<this operation>])"
        )
    else:
        what = f"ADD COLUMN {column} with a CHECK"
        first = (
            f"Add the column without its check, then the check NOT VALID: "
            "SeparateDatabaseAndState(database_operations=["
            f'RunSQL(\'ALTER TABLE "{table}" ADD COLUMN "{column}" <type> NULL\'), {add}], '
            "state_operations=[<this AddField>])"
        )
    return Hit(
        message=(
            f"{what} on {table} takes an ACCESS EXCLUSIVE lock and scans the whole table to "
            "check existing rows: reads and writes wait until the scan ends."
        ),
        hint=(
            f"{first}; then {validate} in a later migration (or later in this one, if it has "
            "atomic = False), where the scan lets reads and writes through."
        ),
        table=table,
        lock=LockMode.ACCESS_EXCLUSIVE,
        rewrites_table=False,
    )


def _validated_in_same_transaction(table: str, name: str, ctx: StatementContext) -> Iterator[Hit]:
    """``ADD … NOT VALID`` whose ``VALIDATE`` runs later in the same transaction block."""
    why = validated_in_same_block(table, name, ctx)
    if why is None:
        return
    yield Hit(
        message=(
            f"CHECK constraint {name} on {table} is added NOT VALID but validated in "
            f"the same transaction ({why}), so the validation scan runs while "
            "the ACCESS EXCLUSIVE lock of the ADD is still held: reads and writes wait "
            "for the whole scan."
        ),
        hint=(
            f'Move RunSQL(\'ALTER TABLE "{table}" VALIDATE CONSTRAINT "{name}"\') to '
            "a later migration, or set atomic = False on this one and give each "
            "statement its own RunSQL."
        ),
        table=table,
        lock=LockMode.ACCESS_EXCLUSIVE,
        rewrites_table=False,
    )
