"""A RunPython without reverse_code, or a RunSQL without reverse_sql, cannot be unapplied.

Every schema operation Django writes knows how to undo itself; ``RunPython``
and ``RunSQL`` only do when they are given a reverse. Without one, migrating
back past this migration (``migrate shop 0041``, the usual way to roll a bad
release back) stops with ``IrreversibleError``, and so does every rollback
that has to cross it. Production is not endangered by the migration itself,
so the finding is informational; but it is better known before the rollback
is needed.

Safe alternative: give it a reverse, or say that undoing needs nothing::

    migrations.RunPython(forwards, reverse_code=backwards)
    migrations.RunPython(forwards, migrations.RunPython.noop)

    migrations.RunSQL(
        "CREATE EXTENSION IF NOT EXISTS citext",
        reverse_sql="DROP EXTENSION citext",
    )
    migrations.RunSQL("UPDATE …", reverse_sql=migrations.RunSQL.noop)

Operations on the database side of ``SeparateDatabaseAndState`` count: they
are undone when it is.

https://docs.djangoproject.com/en/stable/ref/migration-operations/#runpython
https://docs.djangoproject.com/en/stable/ref/migration-operations/#runsql
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.db.migrations import RunPython, RunSQL, SeparateDatabaseAndState

from django_safemigrate.analysis.context import OperationContext
from django_safemigrate.analysis.findings import Hit
from django_safemigrate.analysis.operations import database_operations
from django_safemigrate.analysis.registry import Rule
from django_safemigrate.enums import Kind, Risk

rule = Rule(
    code="SM402",
    name="irreversible-operation",
    severity=Risk.SAFE,
    doc=__doc__,
    kinds=(Kind.IRREVERSIBLE,),
)


@rule.on_operation(RunPython, RunSQL, SeparateDatabaseAndState)
def check(operation: Any, ctx: OperationContext) -> Iterator[Hit]:
    for op in database_operations(operation):
        if isinstance(op, RunPython) and op.reverse_code is None:
            yield Hit(
                message=(
                    "RunPython has no reverse_code: this migration cannot be unapplied, so "
                    "migrating back past it fails."
                ),
                hint=(
                    "Give it a reverse: migrations.RunPython(forwards, reverse_code=backwards), "
                    "or migrations.RunPython(forwards, migrations.RunPython.noop) when undoing "
                    "needs nothing."
                ),
            )
        elif isinstance(op, RunSQL) and op.reverse_sql is None:
            yield Hit(
                message=(
                    "RunSQL has no reverse_sql: this migration cannot be unapplied, so "
                    "migrating back past it fails."
                ),
                hint=(
                    "Give it a reverse: migrations.RunSQL(sql, reverse_sql='...'), or "
                    "reverse_sql=migrations.RunSQL.noop when undoing needs nothing."
                ),
            )
