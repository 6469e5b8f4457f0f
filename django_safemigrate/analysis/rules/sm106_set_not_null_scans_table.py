"""Making a column NOT NULL scans the whole table under an ACCESS EXCLUSIVE lock.

``ALTER TABLE … ALTER COLUMN … SET NOT NULL`` takes ACCESS EXCLUSIVE on the
table and reads every row to prove none is NULL: reads and writes wait for the
whole scan. Django does this for ``AlterField`` from ``null=True`` to
``null=False``. On PostgreSQL 18, ``ADD CONSTRAINT … NOT NULL col`` without
``NOT VALID`` does the same.

Since PostgreSQL 12 the scan is skipped when a valid ``CHECK (col IS NOT
NULL)`` constraint already proves it (checked on PostgreSQL 15: no scan with a
validated check, a scan with a ``NOT VALID`` one). Such a check can be added
``NOT VALID`` (no scan) and validated under SHARE UPDATE EXCLUSIVE (a scan that
lets reads and writes through). The rule stays silent when earlier statements
of the same migration added and validated such a check. Before PostgreSQL 12
there is no way around the scan. PostgreSQL 18 can add the NOT NULL constraint
itself ``NOT VALID`` and validate it later.

Safe alternative (PostgreSQL 12+), in a migration with ``atomic = False`` so
that each statement commits on its own::

    class Migration(migrations.Migration):
        atomic = False
        operations = [
            migrations.RunSQL(
                'ALTER TABLE "shop_order" ADD CONSTRAINT "order_paid_at_notnull" '
                'CHECK ("paid_at" IS NOT NULL) NOT VALID'
            ),
            migrations.RunSQL(
                'ALTER TABLE "shop_order" VALIDATE CONSTRAINT "order_paid_at_notnull"'
            ),
            migrations.SeparateDatabaseAndState(
                database_operations=[
                    migrations.RunSQL(
                        'ALTER TABLE "shop_order" ALTER COLUMN "paid_at" SET NOT NULL'
                    ),
                    migrations.RunSQL(
                        'ALTER TABLE "shop_order" DROP CONSTRAINT "order_paid_at_notnull"'
                    ),
                ],
                state_operations=[
                    migrations.AlterField("order", "paid_at", models.DateTimeField()),
                ],
            ),
        ]

django-pg-zero-downtime-migrations emits this sequence itself. Columns of a
table created in the same migration are left alone: the table is empty.

https://www.postgresql.org/docs/current/sql-altertable.html#SQL-ALTERTABLE-DESC-SET-DROP-NOT-NULL
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, TypeGuard

from pglast import ast
from pglast.enums import AlterTableType, BoolExprType, ConstrType, NullTestType

from django_safemigrate.analysis.context import StatementContext
from django_safemigrate.analysis.findings import Hit
from django_safemigrate.analysis.pgtree import alter_commands, relation_name
from django_safemigrate.analysis.registry import Rule
from django_safemigrate.enums import Kind, LockMode, Risk
from django_safemigrate.sql import Statement

rule = Rule(
    code="SM106",
    name="set-not-null-scans-table",
    severity=Risk.RISKY,
    doc=__doc__,
    kinds=(Kind.BLOCKS_TRAFFIC,),
)


@rule.on_statement(ast.AlterTableStmt)
def check(node: ast.AlterTableStmt, ctx: StatementContext) -> Iterator[Hit]:
    table = relation_name(node.relation)
    if table is None:
        return
    try:
        yield from _judge(node, table, ctx)
    finally:
        _remember(node, table, ctx)


def _judge(node: ast.AlterTableStmt, table: str, ctx: StatementContext) -> Iterator[Hit]:
    if ctx.migration.is_new_table(table):
        return
    pg_version = ctx.migration.pg_version
    for cmd in alter_commands(node):
        if cmd.subtype == AlterTableType.AT_SetNotNull and cmd.name:
            column = str(cmd.name)
        elif (
            cmd.subtype == AlterTableType.AT_AddConstraint
            and _is_not_null_constraint(constraint := cmd.def_)
            and not constraint.skip_validation
        ):
            # PostgreSQL 18: ADD CONSTRAINT name NOT NULL col (validated at once).
            keys = [str(k.sval) for k in constraint.keys or () if isinstance(k, ast.String)]
            if not keys:
                continue
            column = keys[0]
        else:
            continue
        if pg_version >= 12 and (
            _proved_not_null(table, column, ctx) or _proved_before(table, column, ctx)
        ):
            continue
        yield Hit(
            message=(
                f"SET NOT NULL on {table}.{column} takes an ACCESS EXCLUSIVE lock and scans the "
                "whole table to prove no row is NULL: reads and writes wait until the scan ends."
            ),
            hint=_hint(table, column, pg_version),
            table=table,
            lock=LockMode.ACCESS_EXCLUSIVE,
            rewrites_table=False,
        )


def _hint(table: str, column: str, pg_version: int) -> str:
    name = f"{table}_{column}_notnull"
    if pg_version < 12:
        return (
            f"Before PostgreSQL 12 SET NOT NULL always scans. Until the upgrade, enforce it "
            f'with a check instead, added without a scan: RunSQL(\'ALTER TABLE "{table}" ADD '
            f'CONSTRAINT "{name}" CHECK ("{column}" IS NOT NULL) NOT VALID\'), then '
            f'RunSQL(\'ALTER TABLE "{table}" VALIDATE CONSTRAINT "{name}"\') in a later '
            "migration; or run SET NOT NULL in a maintenance window."
        )
    steps = (
        "In a migration with atomic = False: "
        f'RunSQL(\'ALTER TABLE "{table}" ADD CONSTRAINT "{name}" CHECK ("{column}" IS NOT '
        f'NULL) NOT VALID\'), RunSQL(\'ALTER TABLE "{table}" VALIDATE CONSTRAINT "{name}"\'), '
        "then SeparateDatabaseAndState(database_operations=["
        f'RunSQL(\'ALTER TABLE "{table}" ALTER COLUMN "{column}" SET NOT NULL\'), '
        f'RunSQL(\'ALTER TABLE "{table}" DROP CONSTRAINT "{name}"\')], '
        "state_operations=[<this operation>]): with the validated check in place SET NOT NULL "
        "skips the scan. django-pg-zero-downtime-migrations emits this sequence itself."
    )
    if pg_version >= 18:
        steps += (
            " On PostgreSQL 18 you can instead add the NOT NULL constraint itself NOT VALID: "
            f'RunSQL(\'ALTER TABLE "{table}" ADD CONSTRAINT "{name}" NOT NULL "{column}" '
            f'NOT VALID\'), then RunSQL(\'ALTER TABLE "{table}" VALIDATE CONSTRAINT "{name}"\').'
        )
    return steps


def _is_not_null_constraint(node: object) -> TypeGuard[ast.Constraint]:
    return isinstance(node, ast.Constraint) and node.contype == ConstrType.CONSTR_NOTNULL


def _earlier_statements(ctx: StatementContext) -> Iterator[Statement]:
    """The statements of the migration before this one, in order."""
    for operation in ctx.migration.operations:
        for statement in operation.statements:
            if statement is ctx.statement:
                return
            yield statement


def _proved_not_null(table: str, column: str, ctx: StatementContext) -> bool:
    """True when earlier statements left a valid constraint proving ``column`` IS NOT NULL."""
    valid: dict[str, bool] = {}  # constraint name -> validated
    for statement in _earlier_statements(ctx):
        tree = statement.tree
        if not isinstance(tree, ast.AlterTableStmt) or relation_name(tree.relation) != table:
            continue
        for cmd in alter_commands(tree):
            constraint = cmd.def_
            if (
                cmd.subtype == AlterTableType.AT_AddConstraint
                and isinstance(constraint, ast.Constraint)
                and _proves(constraint, column, ctx.migration.pg_version)
            ):
                name = str(constraint.conname or f"<unnamed {len(valid)}>")
                valid[name] = not constraint.skip_validation
            elif cmd.subtype == AlterTableType.AT_ValidateConstraint and cmd.name in valid:
                valid[str(cmd.name)] = True
            elif cmd.subtype == AlterTableType.AT_DropConstraint and cmd.name in valid:
                del valid[str(cmd.name)]
    return any(valid.values())


#: ``facts`` key: table → constraint name → (the constraint, validated), from the
#: ``ALTER TABLE`` statements of earlier migrations in the walk.
_FACTS = "SM106.checks"
#: ``facts`` key: table → validated CHECK constraints found on the live database.
_LIVE = "SM106.live"
#: ``facts`` key: table → names of constraints dropped by the walk so far.
_DROPPED = "SM106.dropped"


def _remember(node: ast.AlterTableStmt, table: str, ctx: StatementContext) -> None:
    """Keep the CHECK constraints this statement adds, validates or drops, for later migrations."""
    known: dict[str, dict[str, tuple[ast.Constraint, bool]]] = ctx.migration.facts.setdefault(
        _FACTS, {}
    )
    checks = known.setdefault(table, {})
    for cmd in alter_commands(node):
        constraint = cmd.def_
        if (
            cmd.subtype == AlterTableType.AT_AddConstraint
            and isinstance(constraint, ast.Constraint)
            and constraint.conname
        ):
            checks[str(constraint.conname)] = (constraint, not constraint.skip_validation)
        elif cmd.subtype == AlterTableType.AT_ValidateConstraint and cmd.name in checks:
            checks[str(cmd.name)] = (checks[str(cmd.name)][0], True)
        elif cmd.subtype == AlterTableType.AT_DropConstraint and cmd.name:
            checks.pop(str(cmd.name), None)
            ctx.migration.facts.setdefault(_DROPPED, {}).setdefault(table, set()).add(str(cmd.name))


def _proved_before(table: str, column: str, ctx: StatementContext) -> bool:
    """A valid constraint from an earlier migration, seen in the walk or on the live database."""
    pg_version = ctx.migration.pg_version
    earlier = ctx.migration.facts.get(_FACTS, {}).get(table, {})
    if any(valid and _proves(c, column, pg_version) for c, valid in earlier.values()):
        return True
    dropped = ctx.migration.facts.get(_DROPPED, {}).get(table, set())
    return any(
        name not in dropped and _proves(c, column, pg_version)
        for name, c in _live_checks(table, ctx).items()
    )


def _live_checks(table: str, ctx: StatementContext) -> dict[str, ast.Constraint]:
    """Validated CHECK constraints of ``table`` on the database the plan is applied to."""
    if not ctx.migration.live or ctx.migration.table_info(table) is None:
        return {}
    cache: dict[str, dict[str, ast.Constraint]] = ctx.migration.facts.setdefault(_LIVE, {})
    catalog = ctx.migration.catalog
    if catalog is None:
        return {}
    if table not in cache:
        found: dict[str, ast.Constraint] = {}
        # Through the analysis's read-only catalog channel: inside the analysis every
        # connection refuses to run statements (analysis/sandbox.py).
        for name, definition in catalog.validated_checks(table):
            constraint = _parse_check(definition)
            if constraint is not None:
                found[str(name)] = constraint
        cache[table] = found
    return cache[table]


def _parse_check(definition: str) -> ast.Constraint | None:
    from pglast import parse_sql
    from pglast.parser import ParseError

    try:
        (raw,) = parse_sql(f"ALTER TABLE t ADD CONSTRAINT c {definition}")
    except (ParseError, ValueError):
        return None
    if not isinstance(raw.stmt, ast.AlterTableStmt):
        return None
    for cmd in alter_commands(raw.stmt):
        if isinstance(cmd.def_, ast.Constraint):
            return cmd.def_
    return None


def _proves(constraint: ast.Constraint, column: str, pg_version: int) -> bool:
    if constraint.contype == ConstrType.CONSTR_CHECK:
        return _implies_not_null(constraint.raw_expr, column)
    if constraint.contype == ConstrType.CONSTR_NOTNULL and pg_version >= 18:
        return any(isinstance(k, ast.String) and k.sval == column for k in constraint.keys or ())
    return False


def _implies_not_null(expr: Any, column: str) -> bool:
    """``col IS NOT NULL``, alone or as one term of an AND (what PostgreSQL's proof accepts)."""
    if isinstance(expr, ast.NullTest):
        return expr.nulltesttype == NullTestType.IS_NOT_NULL and _is_column(expr.arg, column)
    if isinstance(expr, ast.BoolExpr) and expr.boolop == BoolExprType.AND_EXPR:
        return any(_implies_not_null(arg, column) for arg in expr.args or ())
    return False


def _is_column(node: Any, column: str) -> bool:
    if not isinstance(node, ast.ColumnRef) or not node.fields:
        return False
    last = node.fields[-1]
    return isinstance(last, ast.String) and last.sval == column
