"""Changing a column's type fails on the values that no longer fit, or silently changes them.

``ALTER COLUMN … TYPE`` converts every existing value: with the cast written
in ``USING`` if there is one, otherwise with PostgreSQL's assignment cast.
Django writes ``USING "col"::newtype`` whenever the field's data type changes
(``IntegerField`` to ``CharField``), not for a new ``max_length`` or
``max_digits``. When the new type holds less than the old one, the conversion
either fails (and the migration with it, after having rewritten part of the
table under an ACCESS EXCLUSIVE lock) or changes the data without a word. The
message names a value and what happens to it. Checked on PostgreSQL 15, each
with its boundary values on a real table (see the tests):

* to ``varchar(n)`` or ``char(n)`` from a longer text type, or from a type
  whose text can be longer than n characters: an explicit cast (Django's
  ``USING``) truncates the text (``'-2147483648'`` becomes ``'-214748364'`` in
  ``varchar(10)``); the assignment cast fails ("value too long"). The widest
  texts (default ``DateStyle`` ISO and ``IntervalStyle``): ``smallint`` 6
  (``-32768``), ``integer`` 11, ``bigint`` 20, ``numeric(p, s)`` a sign, the
  digits and the point (``numeric(5, 2)``: 7, ``-999.99``), ``real`` 15,
  ``double precision`` 24, ``boolean`` 5 (``false``), ``uuid`` 36, ``date`` 13
  (``4714-11-24 BC``), ``time`` 15, ``time with time zone`` 24, ``timestamp``
  29, ``timestamp with time zone`` 32 in a UTC session (38 in others: local
  mean time offsets have seconds), ``interval`` 66, ``inet``/``cidr`` 43 (the
  text of an address has its netmask), ``macaddr`` 17, ``macaddr8`` 23; fewer
  digits of fractional seconds make them shorter. Unconstrained ``numeric``,
  ``json``, ``jsonb``, ``xml`` and ``bytea`` have no limit;
* from a text type to another type: the cast fails on the first value that does
  not parse and stores the others as the new type prints them (``'007'``
  becomes ``7``, ``'yes'`` becomes ``true``, duplicate ``jsonb`` keys go; to
  ``json``, an enum or a type not known here it only fails). Without ``USING``
  PostgreSQL refuses it whatever the data;
* out of range, fails: ``bigint`` to ``integer``/``smallint``, ``integer`` to
  ``smallint``, an integer or ``numeric`` to a ``numeric(p, s)`` with fewer
  digits before the point, ``numeric``/floats to an integer type, ``double
  precision`` to ``real``, ``macaddr8`` to ``macaddr``;
* rounds: ``numeric`` to a smaller scale; ``numeric``/floats to an integer
  type; ``real``/``double precision`` to ``numeric`` (PostgreSQL keeps the
  first 6 or 15 significant digits: ``0.30000000000000004`` becomes ``0.3``);
  to ``double precision`` (``real``), ``numeric`` with more than 15 (6) digits
  and ``bigint`` beyond 2^53 (``integer`` beyond 2^24); ``double precision``
  to ``real``; fewer digits of fractional seconds (``timestamp``, ``time``,
  ``interval``);
* drops a part: ``timestamp`` to ``date`` or ``time``, ``time with time zone``
  to ``time``, ``interval`` to ``time`` or to fewer fields (``interval year to
  month``), ``inet`` to ``cidr`` (the host bits), ``json`` to ``jsonb``
  (duplicate keys, key order and spacing); ``integer`` to ``boolean`` makes
  every value but 0 true;
* ``timestamp`` ↔ ``timestamp with time zone`` keeps every value when the
  session time zone is UTC (Django's with ``USE_TZ = True``). In another it
  reads the values as local times there, and local times are not one to one
  with instants: the hour the clocks repeat maps two instants to one local
  time, a value in the hour they skip moves by the gap. Data changes without
  an error, so it is reported then.

A change that can only fail (too long without an explicit cast, out of range,
does not parse) is reported as risky: the deploy stops and nothing is lost.
One that changes data without an error (truncation, rounding, a dropped part)
is destructive. One exception is not counted: SQL cuts spaces at the end past
the new length without an error (the message says so). A ``USING`` clause of
the column and casts (``USING col::text``) is judged cast by cast, a cast
through ``text`` as the direct conversion; any other ``USING`` expression is
taken as a conversion written on purpose and left alone.

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
https://www.postgresql.org/docs/current/datatype-character.html
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pglast import ast

from django_safemigrate.analysis.context import StatementContext
from django_safemigrate.analysis.findings import Hit
from django_safemigrate.analysis.registry import Rule
from django_safemigrate.analysis.rules.sm107_column_type_change_rewrites import (
    ColumnType,
    TypeChange,
    column_type,
    type_changes,
)
from django_safemigrate.analysis.rules.sm206_lossy_type_change.conversions import Loss, losses
from django_safemigrate.analysis.rules.sm206_lossy_type_change.texts import TEXT
from django_safemigrate.enums import Kind, LockMode, Risk

rule = Rule(
    code="SM206",
    name="lossy-type-change",
    severity=Risk.DESTRUCTIVE,
    doc=__doc__,
    kinds=(Kind.LOSES_DATA,),
)

#: A cast of ``from`` values to ``to``, ``True`` when written out (explicit).
Cast = tuple[ColumnType, ColumnType, bool]


@rule.on_statement(ast.AlterTableStmt)
def check(node: ast.AlterTableStmt, ctx: StatementContext) -> Iterator[Hit]:
    zone = str(ctx.migration.connection.timezone_name)
    for change in type_changes(node, ctx):
        if change.old is None or change.old.array or change.new.array:
            continue
        found: list[Loss] = []
        for old, new, explicit in casts(change) or ():
            found += [
                loss for loss in losses(old, new, explicit=explicit, zone=zone) if loss not in found
            ]
        if not found:
            continue
        yield Hit(
            message=(
                f"ALTER COLUMN {change.column} TYPE {change.new} on {change.table} "
                f"(was {change.old}) {' and '.join(str(loss) for loss in found)}."
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
            # data stays as it was (risky). One that changes data is destructive.
            severity=None if any(loss.silent for loss in found) else Risk.RISKY,
            kinds=None if any(loss.silent for loss in found) else (Kind.MAY_FAIL,),
        )


def casts(change: TypeChange) -> list[Cast] | None:
    """The casts every value of the column goes through; ``None`` when ``USING`` computes more.

    ``USING col::a::b`` casts explicitly to ``a``, then to ``b``; PostgreSQL then
    assigns the result to the new type (an assignment cast, as without ``USING``).
    """
    assert change.old is not None
    expression, written = change.written_using, []
    while isinstance(expression, ast.TypeCast) and expression.typeName is not None:
        written.append(column_type(expression.typeName))
        expression = expression.arg
    if expression is not None and not _is_column(expression, change.column):
        return None
    found: list[Cast] = []
    current = change.old
    for target in reversed(written):
        found.append((current, target, True))
        current = target
    if not current.same_type(change.new):
        found.append((current, change.new, False))
    return _through_text(found)


def _through_text(found: list[Cast]) -> list[Cast]:
    """``integer`` → ``text`` → ``varchar(5)`` converts the integer's text: one cast."""
    merged: list[Cast] = []
    for source, target, explicit in found:
        start = source
        if merged:
            before, middle, _ = merged[-1]
            if middle.name in TEXT and not middle.mods and before.name not in TEXT:
                start = merged.pop()[0]
        merged.append((start, target, explicit))
    return merged


def _is_column(expression: Any, column: str) -> bool:
    if not isinstance(expression, ast.ColumnRef) or not expression.fields:
        return False
    last = expression.fields[-1]
    return isinstance(last, ast.String) and last.sval == column
