"""An operation whose SQL cannot be seen ahead of time: what it does to the database is unknown.

The analysis judges the SQL an operation renders, and renders it without
running anything. Some operations cannot be judged that way:

- an operation that reaches for a database cursor while its SQL is rendered
  (``schema_editor.connection.cursor()``, ``django.db.connection``, the driver
  connection) to run statements itself. The analysis refuses to run them, so it
  cannot know what they would do; at deploy they run for real;
- an operation whose SQL cannot be rendered at all (its ``database_forwards``
  raises);
- a custom operation that declares ``reduces_to_sql = False``: it runs Python
  that no rule can see (``RunPython`` is SM401's; the operations of this
  package, such as ``Backfill``, are known).

Such an operation could create an index or drop a table; nothing shows which.
Staying silent would judge it safe. It is therefore graded **destructive**: the
highest risk, and the one at which ``safemigrate`` requires a recorded review by
default (``SAFEMIGRATE['REVIEW'] = 'destructive'``). A reviewer who reads the
operation's code approves it (``reviewmigration`` or the admin), and the deploy
goes on. An acknowledgement in the migration explains the finding but, as for
every rule, does not lower the migration's risk, so the review stays needed.
A project that trusts its own custom operations can lower the grade:
``SAFEMIGRATE = {"RULES": {"SM404": "risky"}}``.

Safe alternative: write the operation so that its SQL can be rendered. Send
every statement through ``schema_editor.execute()``, which renders it in
``sqlmigrate``, ``checkmigrations`` and ``safemigrate --plan`` and runs it at
deploy; read from the database (a lookup that decides what to run) in a
``RunPython`` instead, where SM401 asks for its review::

    class AddAuditTrigger(Operation):
        reduces_to_sql = True

        def database_forwards(self, app_label, schema_editor, from_state, to_state):
            # not: with schema_editor.connection.cursor() as cursor: cursor.execute(...)
            schema_editor.execute(
                "CREATE TRIGGER audit AFTER UPDATE ON shop_order "
                "FOR EACH ROW EXECUTE FUNCTION audit_row()"
            )

https://docs.djangoproject.com/en/stable/ref/migration-operations/#writing-your-own
https://docs.djangoproject.com/en/stable/ref/schema-editor/#execute
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.db.migrations import RunPython
from django.db.migrations.operations.base import Operation

from django_safemigrate.analysis.context import OperationContext
from django_safemigrate.analysis.findings import Hit
from django_safemigrate.analysis.operations import database_operations
from django_safemigrate.analysis.registry import Rule
from django_safemigrate.enums import Kind, Risk

rule = Rule(
    code="SM404",
    name="opaque-operation",
    severity=Risk.DESTRUCTIVE,
    doc=__doc__,
    kinds=(Kind.OPAQUE,),
)

_REVIEW = (
    "Make its SQL renderable (every statement through schema_editor.execute(); lookups in a "
    "RunPython), or have someone read its code and record a review before the deploy."
)


@rule.on_operation(Operation)
def check(operation: Any, ctx: OperationContext) -> Iterator[Hit]:
    name = type(operation).__name__
    rendered = ctx.sql
    if rendered.refused:
        tried = "; ".join(rendered.refused)
        yield Hit(
            message=(
                f"{name} tried to reach the database while its SQL was being rendered "
                f"({tried}). The analysis refused, so what it does to the database is unknown; "
                "at deploy it runs for real."
            ),
            hint=_REVIEW,
        )
        return
    if rendered.render_error:
        yield Hit(
            message=(
                f"The SQL of {name} could not be rendered ({rendered.render_error}), so what "
                "it does to the database is unknown."
            ),
            hint=_REVIEW,
        )
        return
    for op in database_operations(operation):
        if op.reduces_to_sql or isinstance(op, RunPython) or _known(op):
            continue
        yield Hit(
            message=(
                f"{type(op).__name__} runs Python on the database (reduces_to_sql = False) "
                "that no rule can see, so what it does to the database is unknown."
            ),
            hint=_REVIEW,
        )


def _known(operation: Any) -> bool:
    """The operations of this package (``Backfill``): what they run is known."""
    return type(operation).__module__.startswith("django_safemigrate.")
