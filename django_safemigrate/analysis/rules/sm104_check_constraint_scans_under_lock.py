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

A domain's constraints are checked the same way, on every table at once.
``ALTER DOMAIN … ADD CONSTRAINT … CHECK (…)`` and ``ALTER DOMAIN … SET NOT NULL``
read every stored value of the domain (every column of every table or materialized
view that uses it, also through domains based on it), and hold a SHARE lock on each
of those tables while they do: reads go on, writes wait for the whole check
(checked on PostgreSQL 15 in ``pg_locks``). ``ADD CONSTRAINT … NOT VALID`` skips
the check, but up to PostgreSQL 18 ``ALTER DOMAIN … VALIDATE CONSTRAINT`` takes the
same SHARE locks for its scan (PostgreSQL's development branch after 18 lowers it to
SHARE UPDATE EXCLUSIVE), so it is reported too; a domain's ``NOT NULL`` has no
``NOT VALID`` form. Where the catalogs are at hand the finding names the tables;
when none of them is large (or none uses the domain) it does not block. To check
existing values while writes go on, check the columns instead of the domain::

    # 0007: brief lock, no scan; new rows are checked from here
    migrations.RunSQL(
        'ALTER TABLE "shop_order" ADD CONSTRAINT "order_amount_positive" '
        'CHECK ("amount" > 0) NOT VALID'
    )
    # 0008: scans under SHARE UPDATE EXCLUSIVE, writes go on
    migrations.RunSQL('ALTER TABLE "shop_order" VALIDATE CONSTRAINT "order_amount_positive"')

or add the domain's constraint ``NOT VALID`` now and validate it in a later
migration at a time when writes to those tables can wait (acknowledging SM104
there).

django-pg-zero-downtime-migrations emits ``NOT VALID`` then ``VALIDATE`` for
``AddConstraint`` and runs them outside a transaction; it does not for the check
of a new ``PositiveIntegerField``. Checks of a table created in the same
migration are left alone: the table is empty.

https://www.postgresql.org/docs/current/sql-altertable.html#SQL-ALTERTABLE-NOTES
https://www.postgresql.org/docs/current/sql-alterdomain.html
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TypeGuard

from pglast import ast
from pglast.enums import AlterTableType, ConstrType
from pglast.stream import RawStream

from django_safemigrate.analysis.context import MigrationContext, StatementContext
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
    code="SM104",
    name="check-constraint-scans-under-lock",
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


# -- ALTER DOMAIN -----------------------------------------------------------------------------

#: ``AlterDomainStmt.subtype`` (PostgreSQL's parsenodes.h): ADD CONSTRAINT, SET NOT NULL,
#: VALIDATE CONSTRAINT.
_ADD_CONSTRAINT, _SET_NOT_NULL, _VALIDATE = "C", "O", "V"

#: The last major version whose ``ALTER DOMAIN … VALIDATE CONSTRAINT`` holds SHARE on the
#: tables for its scan (PostgreSQL commit 16a0039dc, after 18, lowers it to SHARE UPDATE
#: EXCLUSIVE, as ``ALTER TABLE … VALIDATE CONSTRAINT`` takes).
_VALIDATE_TAKES_SHARE_UNTIL = 18

#: How many columns a message names before it says "and N more".
_NAMED = 6


@rule.on_statement(ast.AlterDomainStmt)
def check_domain(node: ast.AlterDomainStmt, ctx: StatementContext) -> Iterator[Hit]:
    domain = tuple(str(p.sval) for p in node.typeName or () if isinstance(p, ast.String))
    name = ".".join(domain)
    mctx = ctx.migration
    if node.subtype == _ADD_CONSTRAINT:
        constraint = node.def_
        if not isinstance(constraint, ast.Constraint) or is_not_valid(constraint):
            return
        if _is_check(constraint):
            what = f"ADD CONSTRAINT {constraint.conname}" if constraint.conname else "ADD CHECK"
            hint = _domain_check_hint(name, domain, constraint)
        elif constraint.contype == ConstrType.CONSTR_NOTNULL:
            what = f"ADD CONSTRAINT {constraint.conname}" if constraint.conname else "ADD NOT NULL"
            hint = _DOMAIN_NOT_NULL_HINT
        else:
            return
    elif node.subtype == _SET_NOT_NULL:
        what, hint = "SET NOT NULL", _DOMAIN_NOT_NULL_HINT
    elif node.subtype == _VALIDATE and mctx.pg_version <= _VALIDATE_TAKES_SHARE_UNTIL:
        what = f"VALIDATE CONSTRAINT {node.name}"
        hint = (
            f"Up to PostgreSQL {_VALIDATE_TAKES_SHARE_UNTIL}, validating a domain's constraint "
            "holds SHARE on every table that uses the domain for the whole scan. Run it when "
            "writes to those tables can wait and acknowledge it "
            "(safemigrate_acknowledge = {'SM104': '<why>'}), or check the columns with table "
            "constraints instead: ALTER TABLE <table> ADD CONSTRAINT <name> CHECK (...) NOT "
            "VALID, then ALTER TABLE <table> VALIDATE CONSTRAINT <name> in a later migration, "
            "whose scan lets writes through."
        )
    else:
        return
    yield _domain_hit(name, what, hint, _domain_columns(domain, mctx), mctx)


def _domain_columns(
    domain: tuple[str, ...], mctx: MigrationContext
) -> list[tuple[str, str]] | None:
    catalog = mctx.catalog
    return catalog.domain_columns(domain) if catalog is not None else None


def _domain_hit(
    name: str,
    what: str,
    hint: str,
    columns: list[tuple[str, str]] | None,
    mctx: MigrationContext,
) -> Hit:
    head = f"ALTER DOMAIN {name} {what} checks every stored value of the domain"
    if columns is None:
        message = (
            f"{head}, in every column of every table that uses it, under a SHARE lock on each "
            "of those tables: writes to them wait until the check ends (reads go on)."
        )
        return Hit(message, hint, lock=LockMode.SHARE, rewrites_table=False)
    tables = sorted({table for table, _ in columns})
    if not tables:
        return Hit(
            f"{head} under a SHARE lock on each table that uses it; on this database no "
            "table uses it, so there is nothing to check now.",
            hint,
            lock=LockMode.SHARE,
            rewrites_table=False,
            blocking=False,
        )
    named = ", ".join(f"{table}.{column}" for table, column in columns[:_NAMED])
    if len(columns) > _NAMED:
        named += f" and {len(columns) - _NAMED} more"
    where = f"the table {tables[0]}" if len(tables) == 1 else f"each of those {len(tables)} tables"
    return Hit(
        message=(
            f"{head} ({named}) under a SHARE lock on {where}: writes wait until the check "
            "ends (reads go on)."
        ),
        hint=hint,
        table=tables[0] if len(tables) == 1 else None,
        lock=LockMode.SHARE,
        rewrites_table=False,
        # A lock on new or small tables is over before anyone notices.
        blocking=not all(mctx.is_new_table(t) or mctx.is_small_table(t) for t in tables),
    )


def _domain_check_hint(name: str, domain: tuple[str, ...], constraint: ast.Constraint) -> str:
    # PostgreSQL names an unnamed check of a domain <domain>_check.
    cname = str(constraint.conname or f"{domain[-1]}_check")
    condition = RawStream()(constraint.raw_expr) if constraint.raw_expr is not None else "..."
    return (
        "Check the columns instead of the domain: ALTER TABLE <table> ADD CONSTRAINT <name> "
        "CHECK (<the condition on the column>) NOT VALID, then ALTER TABLE <table> VALIDATE "
        "CONSTRAINT <name> in a later migration, whose scan lets writes through. Or add it "
        f"NOT VALID now, RunSQL('ALTER DOMAIN {name} ADD CONSTRAINT {cname} CHECK ({condition}) "
        "NOT VALID') (no scan; new values are checked from here), and validate it in a later "
        "migration when writes to those tables can wait: up to PostgreSQL "
        f"{_VALIDATE_TAKES_SHARE_UNTIL}, ALTER DOMAIN ... VALIDATE CONSTRAINT holds the same "
        "SHARE locks for its scan."
    )


_DOMAIN_NOT_NULL_HINT = (
    "A domain's NOT NULL has no NOT VALID form. Make the columns NOT NULL instead (SET NOT "
    "NULL after a validated CHECK (<column> IS NOT NULL) NOT VALID, see SM106), or run this "
    "when writes to the tables that use the domain can wait."
)
