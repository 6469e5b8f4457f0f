"""REINDEX without CONCURRENTLY blocks writes, and in practice reads, until the index is rebuilt.

``REINDEX`` takes a SHARE lock on the table, which blocks INSERT, UPDATE and
DELETE, and an ACCESS EXCLUSIVE lock on each index it rebuilds. The manual says
the latter blocks "reads that attempt to use that index", but planning any
query on the table opens all of its indexes, so on PostgreSQL 15 even a
``SELECT`` that cannot use the index waits (checked with a second session and
``lock_timeout``). ``REINDEX TABLE`` does this for every index of the table,
``REINDEX SCHEMA``/``DATABASE``/``SYSTEM`` for every table, one at a time.

``REINDEX … CONCURRENTLY`` (PostgreSQL 12+) builds a new index beside the old
one under SHARE UPDATE EXCLUSIVE and swaps them, letting reads and writes
through; like ``CREATE INDEX CONCURRENTLY`` it cannot run in a transaction
block.

Safe alternative (PostgreSQL 12+), in a migration with ``atomic = False``::

    class Migration(migrations.Migration):
        atomic = False
        operations = [migrations.RunSQL('REINDEX INDEX CONCURRENTLY "order_created_idx"')]

Before PostgreSQL 12 there is no online REINDEX: build a new index with
``CREATE INDEX CONCURRENTLY``, drop the old one with ``DROP INDEX
CONCURRENTLY`` and rename the new one (``ALTER INDEX … RENAME TO``, a brief
lock). ``REINDEX … CONCURRENTLY`` on PostgreSQL 11 or older is reported too:
it fails there.

https://www.postgresql.org/docs/current/sql-reindex.html
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.db.backends.utils import truncate_name
from pglast import ast
from pglast.enums import ReindexObjectType

from django_safemigrate.analysis.context import StatementContext
from django_safemigrate.analysis.findings import Hit
from django_safemigrate.analysis.pgtree import relation_name
from django_safemigrate.analysis.registry import Rule
from django_safemigrate.enums import Kind, LockMode, Risk

rule = Rule(
    code="SM110",
    name="reindex-blocks-writes",
    severity=Risk.RISKY,
    doc=__doc__,
    kinds=(Kind.BLOCKS_TRAFFIC,),
)

_KINDS = {
    ReindexObjectType.REINDEX_OBJECT_INDEX: "INDEX",
    ReindexObjectType.REINDEX_OBJECT_TABLE: "TABLE",
    ReindexObjectType.REINDEX_OBJECT_SCHEMA: "SCHEMA",
    ReindexObjectType.REINDEX_OBJECT_DATABASE: "DATABASE",
    ReindexObjectType.REINDEX_OBJECT_SYSTEM: "SYSTEM",
}


@rule.on_statement(ast.ReindexStmt)
def check(node: ast.ReindexStmt, ctx: StatementContext) -> Iterator[Hit]:
    kind = _KINDS.get(node.kind, "") if node.kind is not None else ""
    target = relation_name(node.relation) or (str(node.name) if node.name else "")
    subject = f"REINDEX {kind} {target}".rstrip()
    pg_version = ctx.migration.pg_version
    table = _table(node, ctx)
    if _concurrently(node.params):
        if pg_version >= 12:
            return
        yield Hit(
            message=(
                f"{subject} CONCURRENTLY does not exist before PostgreSQL 12: the statement "
                f"fails on PostgreSQL {pg_version}."
            ),
            hint=_before_12_hint(),
            table=table,
        )
        return
    if node.kind == ReindexObjectType.REINDEX_OBJECT_SYSTEM:
        hint = (
            "System catalogs cannot be reindexed concurrently: run REINDEX SYSTEM outside the "
            "deploy, in a maintenance window."
        )
    elif pg_version >= 12:
        concurrent = f"REINDEX {kind} CONCURRENTLY {_quoted(target)}".rstrip()
        hint = (
            f"Use RunSQL('{concurrent}') in a migration with atomic = False: it builds the new "
            "index beside the old one and lets reads and writes through."
        )
    else:
        hint = _before_12_hint()
    yield Hit(
        message=(
            f"{subject} holds a SHARE lock on the table and an ACCESS EXCLUSIVE lock on each "
            "index it rebuilds: writes wait, and so do reads, because planning a query on the "
            "table opens its indexes."
        ),
        hint=hint,
        table=table,
        lock=LockMode.ACCESS_EXCLUSIVE,
        rewrites_table=False,
    )


def _before_12_hint() -> str:
    return (
        "Before PostgreSQL 12 there is no online REINDEX: build a replacement with "
        "CREATE INDEX CONCURRENTLY, drop the old index with DROP INDEX CONCURRENTLY and rename "
        "the new one (ALTER INDEX ... RENAME TO), each in a migration with atomic = False."
    )


def _quoted(name: str) -> str:
    return f'"{name}"' if name else ""


def _table(node: ast.ReindexStmt, ctx: StatementContext) -> str | None:
    """The table whose indexes are rebuilt (for ``REINDEX INDEX``, from the project state)."""
    name = relation_name(node.relation)
    if node.kind == ReindexObjectType.REINDEX_OBJECT_TABLE:
        return name
    if node.kind != ReindexObjectType.REINDEX_OBJECT_INDEX or name is None:
        return None
    state = ctx.operation.from_state
    if state is None:
        return None
    for (app_label, model_name), model_state in state.models.items():
        options = model_state.options
        declared = [*options.get("indexes", ()), *options.get("constraints", ())]
        if any(getattr(index, "name", None) == name for index in declared):
            # Options.db_table's default, without rendering every model of the state.
            default = truncate_name(
                f"{app_label}_{model_name}", ctx.migration.connection.ops.max_name_length()
            )
            return str(options.get("db_table") or default)
    return None


def _concurrently(params: Any) -> bool:
    """``CONCURRENTLY`` (or ``(CONCURRENTLY true)``), read as PostgreSQL's ``defGetBoolean``."""
    for option in params or ():
        if not isinstance(option, ast.DefElem) or option.defname != "concurrently":
            continue
        value = option.arg
        if value is None:
            return True
        if isinstance(value, ast.Boolean):
            return bool(value.boolval)
        if isinstance(value, ast.Integer):
            return bool(value.ival)
        if isinstance(value, ast.String):
            return str(value.sval).lower() not in {"false", "off", "0"}
        return True
    return False
