"""A risky statement that ``safemigrate`` cannot run online here needs a review.

With online execution on (``SAFEMIGRATE['ONLINE']``, the default), ``safemigrate`` runs
each risky statement on an existing table in its online form (see README, "Online
execution"). A few have none that is safe in the situation at hand, for example a type
change of a column that a primary key, a foreign key or a view depends on: copying it
to a new column would leave those behind. Such a statement would run in its blocking
form (``ACCESS EXCLUSIVE`` for as long as the table takes to rewrite or scan), so the
finding is destructive: the gate holds the migration until someone reviews it.

Safe alternative: do the change by hand in several releases (a new column written by
the code or a trigger, a ``Backfill``, the switch in a later migration), or approve the
migration knowing the table is small or the traffic can wait, or run it in a
maintenance window.
"""

from __future__ import annotations

from collections.abc import Iterator

from django_safemigrate.analysis.context import MigrationContext
from django_safemigrate.analysis.findings import Hit
from django_safemigrate.analysis.pgtree import relation_name
from django_safemigrate.analysis.registry import Rule
from django_safemigrate.enums import Kind, LockMode, Risk

rule = Rule(
    code="SM111",
    name="no-online-form",
    severity=Risk.DESTRUCTIVE,
    doc=__doc__,
    kinds=(Kind.BLOCKS_TRAFFIC,),
)


@rule.on_migration
def check(ctx: MigrationContext) -> Iterator[Hit]:
    for index, plan in sorted(ctx.online.items()):
        for refusal in plan.refusals:
            table = relation_name(getattr(refusal.original.tree, "relation", None))
            yield Hit(
                message=(
                    f"This statement has no online form here: {refusal.reason}. safemigrate "
                    "would run it in its blocking form: "
                    f"{' '.join(refusal.original.sql.split())}"
                ),
                hint=(
                    "Split the change over several releases (new column, Backfill, switch "
                    "later), or approve the migration if the table is small or the traffic "
                    "can wait."
                ),
                table=table,
                lock=LockMode.ACCESS_EXCLUSIVE,
                operation_index=index,
                # A table new to this deploy, or a small one, is rewritten in no time.
                blocking=not (ctx.is_new_table(table) or ctx.is_small_table(table)),
            )
