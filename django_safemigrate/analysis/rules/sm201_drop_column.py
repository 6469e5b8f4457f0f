"""Dropping a column loses its data and breaks the code that still reads it.

``ALTER TABLE … DROP COLUMN`` is quick (a catalog change under a brief ACCESS
EXCLUSIVE lock), but the data is gone, and during a deploy the old code is
still running: Django selects every field of a model by name, so each query of
the old code fails with "column does not exist" until it is replaced.

Safe alternative, in two releases: first remove every use of the field and
make it nullable (or give it a ``db_default``), and drop it from the model state
only with ``SeparateDatabaseAndState`` (state side ``RemoveField``, no database
side); after that release is everywhere, drop the column in a post-deploy
migration.

https://www.postgresql.org/docs/current/sql-altertable.html
"""

from __future__ import annotations

from collections.abc import Iterator

from pglast import ast
from pglast.enums import AlterTableType

from django_safemigrate.analysis.context import StatementContext
from django_safemigrate.analysis.findings import Hit
from django_safemigrate.analysis.pgtree import alter_commands, relation_name
from django_safemigrate.analysis.registry import Rule
from django_safemigrate.enums import LockMode, Risk

rule = Rule(code="SM201", name="drop-column", severity=Risk.DESTRUCTIVE, doc=__doc__)


@rule.on_statement(ast.AlterTableStmt)
def check(node: ast.AlterTableStmt, ctx: StatementContext) -> Iterator[Hit]:
    table = relation_name(node.relation)
    for cmd in alter_commands(node):
        if cmd.subtype != AlterTableType.AT_DropColumn:
            continue
        yield Hit(
            message=(
                f"DROP COLUMN {cmd.name} on {table} deletes the column's data, and the code "
                "still running selects it by name."
            ),
            hint=(
                "Stop using the field in one release and remove it from the model state only "
                "(SeparateDatabaseAndState with state_operations=[RemoveField(...)]); drop the "
                "column in a later, post-deploy migration."
            ),
            table=table,
            lock=LockMode.ACCESS_EXCLUSIVE,
            rewrites_table=False,
            # A table created earlier in the same migration or deploy holds no data yet.
            blocking=not ctx.migration.is_new_table(table),
        )
