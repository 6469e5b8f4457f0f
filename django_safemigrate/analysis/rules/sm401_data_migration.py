"""A data migration runs arbitrary Python during the deploy, and nobody has reviewed it yet.

``RunPython`` can do anything: read and write every row of a table, call other
services, take minutes. In an atomic migration it runs inside the migration's
transaction, so every row it writes stays locked, and every lock the
migration's schema changes took stays held, until it returns. Its SQL cannot be
shown ahead of time, so no other rule can judge it.

Safe alternative: review it, then make it

- idempotent: safe to run twice (a deploy retried after a failure runs it again);
- batched: by primary key, a bounded number of rows at a time, each batch in its
  own transaction (``atomic = False`` on the migration);
- fast, or moved out of the deploy into a job when it cannot be;

and acknowledge the review in the migration::

    def backfill(apps, schema_editor):
        Order = apps.get_model("shop", "Order")
        last = 0
        while ids := list(
            Order.objects.filter(pk__gt=last, status="")
            .order_by("pk")
            .values_list("pk", flat=True)[:1000]
        ):
            Order.objects.filter(pk__in=ids).update(status="new")
            last = ids[-1]

    class Migration(migrations.Migration):
        atomic = False
        safemigrate_acknowledge = {"SM401": "idempotent, batched; ~20k rows"}
        operations = [migrations.RunPython(backfill, migrations.RunPython.noop)]

``RunPython.noop`` is left alone: it does nothing.

https://docs.djangoproject.com/en/stable/ref/migration-operations/#runpython
https://docs.djangoproject.com/en/stable/howto/writing-migrations/#non-atomic-migrations
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.db.migrations import RunPython, SeparateDatabaseAndState

from django_safemigrate.analysis.context import OperationContext
from django_safemigrate.analysis.findings import Hit
from django_safemigrate.analysis.operations import database_operations
from django_safemigrate.analysis.registry import Rule
from django_safemigrate.enums import Kind, Risk

rule = Rule(
    code="SM401",
    name="data-migration",
    severity=Risk.RISKY,
    doc=__doc__,
    kinds=(Kind.OPAQUE,),
)


@rule.on_operation(RunPython, SeparateDatabaseAndState)
def check(operation: Any, ctx: OperationContext) -> Iterator[Hit]:
    for op in database_operations(operation):
        if not isinstance(op, RunPython) or op.code is RunPython.noop:
            continue
        # An atomic migration runs whole in one transaction; in a non-atomic one, an
        # operation gets its own when it asks for it (Migration.apply). Inside
        # SeparateDatabaseAndState, the outer operation's ``atomic`` decides.
        in_transaction = ctx.migration.atomic or bool(ctx.operation.atomic)
        where = (
            "inside a transaction: every row it writes stays locked, and every lock taken "
            "before it in that transaction stays held, until it commits"
            if in_transaction
            else "outside a transaction: a failure halfway leaves what it already wrote"
        )
        yield Hit(
            message=f"RunPython({_name(op.code)}) runs arbitrary Python {where}.",
            hint=(
                "Review it; make it idempotent, batch it by primary key (a bounded number of "
                "rows per transaction, atomic = False), keep it fast; then acknowledge it in the "
                "migration: safemigrate_acknowledge = {'SM401': '<what you checked>'}."
            ),
        )


def _name(code: Any) -> str:
    return str(getattr(code, "__qualname__", None) or getattr(code, "__name__", None) or code)
