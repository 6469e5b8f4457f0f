"""Narrowing a column's type fails on the values that no longer fit, or silently changes them.

``ALTER COLUMN … TYPE`` converts every existing value. When the new type
holds less than the old one, the conversion either fails (and the migration
with it, after having rewritten part of the table under an ACCESS EXCLUSIVE
lock) or changes the data without a word (checked on PostgreSQL 15, see the
tests):

* ``varchar(n)`` to a shorter ``varchar``/``char``, ``text`` to ``varchar(n)``:
  fails on longer values ("value too long"); with an explicit cast in
  ``USING`` it truncates them instead;
* ``bigint`` to ``integer``/``smallint``, ``integer`` to ``smallint``: fails on
  values out of range;
* ``numeric(p, s)`` to a smaller scale: rounds every value; to fewer integer
  digits, or from unconstrained ``numeric``: fails on values that do not fit;
  ``numeric``/``real``/``double precision`` to an integer type: rounds away
  the fraction;
* ``double precision`` to ``real``, ``numeric`` to a float: keeps fewer
  significant digits;
* a lower precision of ``timestamp``/``time``, ``timestamp`` to ``date``:
  rounds or drops the time of day;
* a text type to a non-text type (``CharField`` to ``IntegerField``): fails on
  the first value that does not parse.

A change that can only fail (too long, out of range, does not parse) is
reported as risky: the deploy stops and nothing is lost. A change that rounds
or drops data is destructive.

Safe alternative: look at the data first, and convert it deliberately: add a
new column, copy the values with a conversion you have reviewed, and switch
over (see SM107). To cap the length of a text column without a rewrite, keep
the type and add a check instead::

    migrations.AddConstraint(
        "customer",
        models.CheckConstraint(
            condition=Q(name__length__lte=50), name="customer_name_max_50"
        ),
    )  # NOT VALID, then VALIDATE in a later migration: see SM104

Columns of a table created in the same migration are left alone.

https://www.postgresql.org/docs/current/sql-altertable.html#SQL-ALTERTABLE-DESC-SET-DATA-TYPE
"""

from __future__ import annotations

from collections.abc import Iterator

from pglast import ast

from django_safemigrate.analysis.context import StatementContext
from django_safemigrate.analysis.findings import Hit
from django_safemigrate.analysis.registry import Rule
from django_safemigrate.analysis.rules.sm107_column_type_change_rewrites import (
    ColumnType,
    type_changes,
)
from django_safemigrate.enums import LockMode, Risk

rule = Rule(code="SM206", name="lossy-type-change", severity=Risk.DESTRUCTIVE, doc=__doc__)

_INTEGERS = {"int2": 2, "int4": 4, "int8": 8}
_FLOATS = {"float4": 6, "float8": 15}  # significant decimal digits kept
_TEXT = {"text", "varchar", "bpchar", "citext"}
_TEMPORAL = {"timestamp", "timestamptz", "time", "timetz"}
_MAX_PRECISION = 6


@rule.on_statement(ast.AlterTableStmt)
def check(node: ast.AlterTableStmt, ctx: StatementContext) -> Iterator[Hit]:
    for change in type_changes(node, ctx):
        if change.old is None or change.old.array or change.new.array:
            continue
        reason = lossy(change.old, change.new)
        if reason is None:
            continue
        yield Hit(
            message=(
                f"ALTER COLUMN {change.column} TYPE {change.new} on {change.table} "
                f"(was {change.old}) {reason}."
            ),
            hint=(
                "Check the data first and convert it deliberately: add a new column with the "
                "new type, copy the values with a conversion you have reviewed, then switch "
                "over (see SM107). To cap a text length, keep the type and add "
                "CheckConstraint(condition=Q(<field>__length__lte=n)) NOT VALID, then "
                "VALIDATE it (see SM104)."
            ),
            table=change.table,
            lock=LockMode.ACCESS_EXCLUSIVE,
            rewrites_table=True,
            # A conversion that can only fail loses nothing: the deploy stops and the
            # data stays as it was (risky). One that rounds or drops data is destructive.
            severity=Risk.RISKY if reason.startswith("fails") else None,
        )


def lossy(old: ColumnType, new: ColumnType) -> str | None:
    """Why converting ``old`` values to ``new`` can fail or change them; ``None`` if it cannot."""
    o, n = old.name, new.name
    if o in _INTEGERS and n in _INTEGERS and _INTEGERS[n] < _INTEGERS[o]:
        return f"fails on values outside the range of {new}"
    if o in _TEXT and n in {"varchar", "bpchar"} and new.mods:
        limit = new.mods[0]
        if o in {"text", "citext"} or not old.mods or old.mods[0] > limit:
            return (
                f"fails on values longer than {limit} characters (an explicit cast in USING "
                "truncates them instead)"
            )
        return None
    if o in _TEXT and n not in _TEXT:
        return f"fails on the first value that is not a valid {new}"
    if o == n == "numeric" and new.mods:
        return _numeric_narrowing(old.mods, new.mods)
    if (o == "numeric" or o in _FLOATS) and n in _INTEGERS:
        return "rounds away the fractional part of every value"
    if (
        (o == "numeric" or o in _FLOATS)
        and n in _FLOATS
        and (o == "numeric" or _FLOATS[n] < _FLOATS[o])
    ):
        return f"keeps only about {_FLOATS[n]} significant digits of every value"
    if o in _TEMPORAL and n in _TEMPORAL and new.mods:
        old_precision = old.mods[0] if old.mods else _MAX_PRECISION
        if new.mods[0] < old_precision:
            return f"rounds fractional seconds to {new.mods[0]} digits"
    if o in {"timestamp", "timestamptz"} and n == "date":
        return "drops the time of day of every value"
    return None


def _numeric_narrowing(old: tuple[int, ...], new: tuple[int, ...]) -> str | None:
    precision, scale = new[0], (new[1] if len(new) > 1 else 0)
    if not old:
        return (
            f"rounds values to {scale} decimal places and fails on values with more than "
            f"{precision - scale} digits before the point"
        )
    old_precision, old_scale = old[0], (old[1] if len(old) > 1 else 0)
    reasons = []
    if scale < old_scale:
        reasons.append(f"rounds every value to {scale} decimal places")
    if precision - scale < old_precision - old_scale:
        reasons.append(
            f"fails on values with more than {precision - scale} digits before the point"
        )
    return " and ".join(reasons) or None
