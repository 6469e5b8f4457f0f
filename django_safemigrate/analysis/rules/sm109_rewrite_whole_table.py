"""VACUUM FULL, CLUSTER and their kin rewrite the whole table under an ACCESS EXCLUSIVE lock.

``VACUUM FULL`` and ``CLUSTER`` copy the table into a new file (and rebuild
every index) while holding ACCESS EXCLUSIVE: reads and writes wait until the
copy is done, minutes to hours on a large table. Without a table name they do
it to every table of the database (``CLUSTER``: every table clustered before).
``ALTER TABLE … SET TABLESPACE`` (Django's change of ``db_tablespace``), ``SET
LOGGED`` and ``SET UNLOGGED`` rewrite the table the same way (checked on
PostgreSQL 15: ``pg_class.relfilenode`` changes).

A plain ``VACUUM`` (without ``FULL``) takes SHARE UPDATE EXCLUSIVE and lets
reads and writes through; ``VACUUM`` in any form cannot run in a transaction
block, so a migration is a poor place for it anyway.

Safe alternative: do not compact or move tables from a migration. Run
``pg_repack`` or ``pg_squeeze`` (which rebuild a table online and hold the
strong lock only for a moment) as a maintenance task, or a plain ``VACUUM`` if
the aim is to reclaim dead rows for reuse. A table created in the same
migration, or a small one, is reported but does not block.

https://www.postgresql.org/docs/current/sql-vacuum.html
https://www.postgresql.org/docs/current/sql-cluster.html
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pglast import ast
from pglast.enums import AlterTableType

from django_safemigrate.analysis.context import StatementContext
from django_safemigrate.analysis.findings import Hit
from django_safemigrate.analysis.pgtree import alter_commands, relation_name
from django_safemigrate.analysis.registry import Rule
from django_safemigrate.enums import Kind, LockMode, Risk

rule = Rule(
    code="SM109",
    name="rewrite-whole-table",
    severity=Risk.RISKY,
    doc=__doc__,
    kinds=(Kind.BLOCKS_TRAFFIC,),
)

_HINT = (
    "Remove it from the migration: rebuild the table online with pg_repack or pg_squeeze as "
    "a maintenance task (they hold the strong lock only for a moment), or run a plain VACUUM "
    "(no FULL), which lets reads and writes through."
)

_ALTER_REWRITES = {
    AlterTableType.AT_SetTableSpace: "SET TABLESPACE",
    AlterTableType.AT_SetLogged: "SET LOGGED",
    AlterTableType.AT_SetUnLogged: "SET UNLOGGED",
}


@rule.on_statement(ast.VacuumStmt)
def check_vacuum(node: ast.VacuumStmt, ctx: StatementContext) -> Iterator[Hit]:
    if not node.is_vacuumcmd or not _option(node.options, "full"):
        return
    tables = [relation_name(rel.relation) for rel in node.rels or () if hasattr(rel, "relation")]
    if not tables:
        yield _hit("VACUUM FULL without a table name rewrites every table of the database", None)
    for table in tables:
        yield _hit(f"VACUUM FULL {table} rewrites the table and its indexes", table)


@rule.on_statement(ast.ClusterStmt)
def check_cluster(node: ast.ClusterStmt, ctx: StatementContext) -> Iterator[Hit]:
    table = relation_name(node.relation)
    if table is None:
        yield _hit("CLUSTER without a table name rewrites every table clustered before", None)
        return
    yield _hit(f"CLUSTER {table} rewrites the table in index order, and its indexes", table)


@rule.on_statement(ast.AlterTableStmt)
def check_alter(node: ast.AlterTableStmt, ctx: StatementContext) -> Iterator[Hit]:
    table = relation_name(node.relation)
    for cmd in alter_commands(node):
        what = _ALTER_REWRITES.get(cmd.subtype) if cmd.subtype is not None else None
        if what is None:
            continue
        hint = (
            "Create the table where it should live from the start; to move or change a large "
            "table, build a copy online (pg_repack can move a table to another tablespace) or "
            "do it in a maintenance window."
        )
        yield Hit(
            message=(
                f"ALTER TABLE {table} {what} copies the whole table and its indexes while "
                "holding an ACCESS EXCLUSIVE lock: reads and writes wait until it is done."
            ),
            hint=hint,
            table=table,
            lock=LockMode.ACCESS_EXCLUSIVE,
            rewrites_table=True,
        )


def _hit(what: str, table: str | None) -> Hit:
    return Hit(
        message=(
            f"{what} while holding an ACCESS EXCLUSIVE lock: reads and writes wait until it "
            "is done."
        ),
        hint=_HINT,
        table=table,
        lock=LockMode.ACCESS_EXCLUSIVE,
        rewrites_table=True,
    )


def _option(options: Any, name: str) -> bool:
    """Whether boolean option ``name`` is on, read as PostgreSQL's ``defGetBoolean`` does."""
    for option in options or ():
        if not isinstance(option, ast.DefElem) or option.defname != name:
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
