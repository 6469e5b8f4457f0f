"""A database's schema read from PostgreSQL's catalogs, to compare two databases.

Works wherever a connection does (no ``pg_dump`` needed, so also against the embedded
server). Every object is described by what PostgreSQL itself prints for it
(``format_type``, ``pg_get_expr``, ``pg_get_indexdef``, ``pg_get_constraintdef``,
``pg_get_triggerdef``, ``pg_get_functiondef``, ``pg_get_viewdef``), plus the state a
definition does not show: nullability, identity, a constraint's validation and
deferral, an index's validity. Data (rows, sequence positions, statistics) is not
compared. See https://www.postgresql.org/docs/current/catalogs.html.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from typing import Any

#: The line django_safemigrate keeps in the comment on ``django_migrations``: the ledger's
#: high-water mark (README, "A ledger that lost records"). It is this app's object, like
#: its tables, so an excluded prefix leaves it out too; the rest of the comment counts.
_LEDGER_MARK = re.compile(r"^django_safemigrate ledger: .*$\n?", re.MULTILINE)

#: Schemas that belong to the server, not to the migrations.
SYSTEM_SCHEMAS = ("pg_catalog", "information_schema", "pg_toast")


@dataclasses.dataclass(frozen=True)
class Schema:
    """Each kind of object as a sorted tuple of rows; names first, so diffs read well."""

    relations: tuple[tuple[str, ...], ...]
    columns: tuple[tuple[str, ...], ...]
    indexes: tuple[tuple[str, ...], ...]
    constraints: tuple[tuple[str, ...], ...]
    sequences: tuple[tuple[str, ...], ...]
    triggers: tuple[tuple[str, ...], ...]
    functions: tuple[tuple[str, ...], ...]
    views: tuple[tuple[str, ...], ...]
    types: tuple[tuple[str, ...], ...]
    extensions: tuple[tuple[str, ...], ...]

    def table_names(self) -> set[str]:
        return {row[0] for row in self.relations if row[1] == "r"}


# Relation names are qualified by schema (``public.auth_user``) everywhere below.
_QUALIFIED = "n.nspname || '.' || c.relname"

_QUERIES: dict[str, str] = {
    "relations": f"""
        SELECT {_QUALIFIED}, c.relkind::text, c.relpersistence::text,
               coalesce(obj_description(c.oid, 'pg_class'), '')
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') AND {{schemas}} AND {{relation}}
    """,
    # Position among the live columns (dropped ones leave gaps in attnum).
    "columns": f"""
        SELECT {_QUALIFIED}, a.attname,
               {{position}}
               format_type(a.atttypid, a.atttypmod), a.attnotnull::text,
               coalesce(pg_get_expr(d.adbin, d.adrelid), ''), a.attidentity::text,
               a.attgenerated::text, coalesce(co.collname, ''),
               coalesce(col_description(c.oid, a.attnum), '')
        FROM pg_attribute a
        JOIN pg_class c ON c.oid = a.attrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        LEFT JOIN pg_collation co ON co.oid = a.attcollation AND a.attcollation <> 0
            AND co.collname <> 'default'
        WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND a.attnum > 0
          AND NOT a.attisdropped AND {{schemas}} AND {{relation}}
    """,
    "indexes": f"""
        SELECT {_QUALIFIED}, i.relname, pg_get_indexdef(x.indexrelid),
               x.indisvalid::text, x.indisready::text
        FROM pg_index x
        JOIN pg_class i ON i.oid = x.indexrelid
        JOIN pg_class c ON c.oid = x.indrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE {{schemas}} AND {{relation}}
    """,
    "constraints": f"""
        SELECT {_QUALIFIED}, k.conname, k.contype::text, pg_get_constraintdef(k.oid),
               k.convalidated::text, k.condeferrable::text, k.condeferred::text
        FROM pg_constraint k
        JOIN pg_class c ON c.oid = k.conrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE {{schemas}} AND {{relation}}
    """,
    # The owning column (serial / identity) is part of a sequence's meaning.
    "sequences": f"""
        SELECT {_QUALIFIED}, format_type(s.seqtypid, NULL), s.seqstart::text,
               s.seqincrement::text, s.seqmin::text, s.seqmax::text, s.seqcache::text,
               s.seqcycle::text,
               coalesce((SELECT dn.nspname || '.' || dc.relname || '.' || da.attname
                                || ' (' || dep.deptype::text || ')'
                         FROM pg_depend dep
                         JOIN pg_class dc ON dc.oid = dep.refobjid
                         JOIN pg_namespace dn ON dn.oid = dc.relnamespace
                         JOIN pg_attribute da ON da.attrelid = dep.refobjid
                              AND da.attnum = dep.refobjsubid
                         WHERE dep.classid = 'pg_class'::regclass AND dep.objid = c.oid
                           AND dep.refclassid = 'pg_class'::regclass
                           AND dep.deptype IN ('a', 'i')), '')
        FROM pg_sequence s
        JOIN pg_class c ON c.oid = s.seqrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE {{schemas}} AND {{relation}}
    """,
    "triggers": f"""
        SELECT {_QUALIFIED}, t.tgname, pg_get_triggerdef(t.oid), t.tgenabled::text
        FROM pg_trigger t
        JOIN pg_class c ON c.oid = t.tgrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE NOT t.tgisinternal AND {{schemas}} AND {{relation}}
    """,
    "functions": """
        SELECT n.nspname || '.' || p.proname || '(' || pg_get_function_identity_arguments(p.oid)
               || ')', pg_get_functiondef(p.oid)
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE p.prokind IN ('f', 'p') AND {schemas} AND {function}
          AND NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = 'pg_proc'::regclass
                          AND e.objid = p.oid AND e.deptype = 'e')
    """,
    "views": f"""
        SELECT {_QUALIFIED}, pg_get_viewdef(c.oid)
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('v', 'm') AND {{schemas}} AND {{relation}}
    """,
    # Enums and domains; the row types of tables come with the tables.
    "types": """
        SELECT n.nspname || '.' || t.typname, t.typtype::text,
               coalesce(format_type(t.typbasetype, t.typtypmod), ''),
               coalesce((SELECT string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder)
                         FROM pg_enum e WHERE e.enumtypid = t.oid), '')
        FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
        WHERE t.typtype IN ('e', 'd') AND {schemas}
    """,
    "extensions": """
        SELECT e.extname, e.extversion, n.nspname
        FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
    """,
}


def read_schema(
    cursor: Any,
    *,
    exclude_prefixes: Sequence[str] = (),
    exclude_relations: Sequence[str] = (),
    exclude_schemas: Sequence[str] = (),
    column_order: bool = False,
) -> Schema:
    """The schema of the database ``cursor`` is connected to.

    ``cursor`` is a DB-API cursor (psycopg's, or a Django connection's). Relations and
    functions named with one of ``exclude_prefixes``, and relations named exactly as one of
    ``exclude_relations``, are left out: a relation left out takes its columns, indexes,
    constraints, triggers and owned sequences with it (they are filtered by the relation
    they belong to). A column's position among its table's columns is read only with
    ``column_order``: a column added by a migration comes last, and the same column added
    back by a reverse comes last too, so order is no part of what a migration restores.
    Schemas named in ``exclude_schemas`` are left out whole, like the system schemas.
    """
    left_out = (*SYSTEM_SCHEMAS, *exclude_schemas)
    schemas = "n.nspname NOT IN ({}) AND n.nspname NOT LIKE 'pg_temp%%'".format(
        ", ".join(_literal(name) for name in left_out)
    )
    relation = _not_prefixed("c.relname", exclude_prefixes)
    if exclude_relations:
        relation += " AND c.relname <> ALL(%s)"
    function = _not_prefixed("p.proname", exclude_prefixes)
    position = (
        "(row_number() OVER (PARTITION BY c.oid ORDER BY a.attnum))::text," if column_order else ""
    )
    rows: dict[str, tuple[tuple[str, ...], ...]] = {}
    patterns = [_like_prefix(prefix) for prefix in exclude_prefixes]
    for kind, sql in _QUERIES.items():
        text = sql.format(schemas=schemas, relation=relation, function=function, position=position)
        # Each query has at most one filter on names: its parameters.
        params: list[Any] = []
        if "{relation}" in sql:
            params += patterns
            if exclude_relations:
                params.append(list(exclude_relations))
        if "{function}" in sql:
            params += patterns
        cursor.execute(text, params)
        found = [tuple(str(value) for value in row) for row in cursor.fetchall()]
        if kind == "relations" and "django_safemigrate" in exclude_prefixes:
            found = [(*row[:3], _LEDGER_MARK.sub("", row[3]).strip()) for row in found]
        rows[kind] = tuple(sorted(found))
    return Schema(**rows)


def _literal(name: str) -> str:
    """``name`` as an SQL string literal (the query's parameters are kept for name filters)."""
    return "'" + name.replace("'", "''").replace("%", "%%") + "'"


def _not_prefixed(column: str, prefixes: Sequence[str]) -> str:
    return " AND ".join([f"{column} NOT LIKE %s"] * len(prefixes)) or "TRUE"


def _like_prefix(prefix: str) -> str:
    # In LIKE, "_" and "%" are wildcards and a backslash escapes them (the default ESCAPE).
    escaped = prefix.replace("\\", "\\\\").replace("_", "\\_").replace("%", "\\%")
    return f"{escaped}%"


def schema_differences(left: Schema, right: Schema) -> list[str]:
    """What one schema has that the other has not, one line per object, for an assertion."""
    lines: list[str] = []
    for field in dataclasses.fields(Schema):
        mine = set(getattr(left, field.name))
        theirs = set(getattr(right, field.name))
        lines += [f"{field.name}: only in the first: {row}" for row in sorted(mine - theirs)]
        lines += [f"{field.name}: only in the second: {row}" for row in sorted(theirs - mine)]
    return lines
