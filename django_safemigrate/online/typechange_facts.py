"""What the catalogs say about a column whose type changes online.

Read-only queries (``pg_class``, ``pg_attribute``, ``pg_index``, ``pg_constraint``,
``pg_depend``, ``pg_trigger``…): they take no lock beyond the catalogs' own, and run in a
``READ ONLY`` transaction. The objects the online sequence creates (the shadow column,
its trigger, its indexes and checks) are left out, so a rerun after a kill at any point
reads the same facts and plans the same steps. Every reason the change cannot run
online is gathered as a sentence in :attr:`ColumnFacts.blockers`.

https://www.postgresql.org/docs/current/catalogs.html
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any

#: PostgreSQL truncates identifiers to 63 bytes (NAMEDATALEN - 1).
MAX_NAME = 63


@dataclasses.dataclass(frozen=True)
class IndexFacts:
    """An index whose key columns, expressions or predicate reference the column."""

    name: str
    #: ``pg_get_indexdef()``.
    definition: str
    #: The ``UNIQUE`` constraint the index backs (``None`` for a plain index).
    constraint: str | None = None
    deferrable: bool = False
    deferred: bool = False
    comment: str | None = None
    constraint_comment: str | None = None
    #: The index's own column names (``pg_attribute`` of the index), in order: built on
    #: the shadow they would be named after it, so the switch names them back.
    columns: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class CheckFacts:
    """A ``CHECK`` constraint that references the column."""

    name: str
    #: ``pg_get_constraintdef()``.
    definition: str
    validated: bool
    comment: str | None = None


@dataclasses.dataclass(frozen=True)
class ColumnFacts:
    """The table and the column as the catalogs show them."""

    schema: str
    table: str
    column: str
    #: ``format_type()`` of the column.
    type: str
    #: The type's name as the parser spells it (``int4``, ``timestamptz``; a domain's
    #: base type, an array's element type), to tell conversions that read the session.
    type_name: str
    not_null: bool
    #: The name of the column's NOT NULL constraint (PostgreSQL 18+ keeps them in
    #: ``pg_constraint``; ``None`` before, or when the column is nullable).
    not_null_constraint: str | None
    #: ``pg_get_expr()`` of the column's default.
    default: str | None
    comment: str | None
    #: ``SET STATISTICS`` of the column (``None``: the server's default).
    statistics: int | None
    #: The primary key's columns, in key order (empty: the table has none).
    primary_key: tuple[str, ...]
    indexes: tuple[IndexFacts, ...] = ()
    checks: tuple[CheckFacts, ...] = ()
    #: Why the change cannot run online, each a sentence (empty: it can).
    blockers: tuple[str, ...] = ()


def derived_name(base: str, suffix: str) -> str:
    """``base + suffix``, shortened with a hash of ``base`` to fit in 63 bytes."""
    name = base + suffix
    if len(name.encode()) <= MAX_NAME:
        return name
    digest = hashlib.sha256(base.encode()).hexdigest()[:8]
    room = MAX_NAME - len(suffix.encode()) - len(digest) - 1
    cut = base.encode()[:room].decode(errors="ignore")
    return f"{cut}_{digest}{suffix}"


def sync_trigger_name(column: str) -> str:
    """The name of the trigger that keeps the shadow of ``column`` in step."""
    return derived_name(column, "__sm_sync")


# pg_trigger.tgtype bits (src/include/catalog/pg_trigger.h).
_ROW, _BEFORE, _INSERT, _UPDATE = 1 << 0, 1 << 1, 1 << 2, 1 << 4

_TABLE = """
    SELECT c.oid::int8 AS oid, n.nspname::text AS schema, c.relname::text AS name,
           c.relkind::text AS relkind, c.relispartition AS partition,
           c.reloftype <> 0 AS typed, c.relrowsecurity AS rls,
           EXISTS (SELECT 1 FROM pg_inherits i
                   WHERE i.inhparent = c.oid OR i.inhrelid = c.oid) AS inherits
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
"""

_COLUMN = """
    SELECT a.attnum::int AS attnum, format_type(a.atttypid, a.atttypmod) AS type,
           (SELECT b.typname::text FROM pg_type b WHERE b.oid = CASE
                WHEN t.typcategory = 'A' AND t.typelem <> 0 THEN t.typelem
                WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END) AS type_name,
           a.attnotnull AS not_null, pg_get_expr(d.adbin, d.adrelid) AS default,
           col_description(a.attrelid, a.attnum) AS comment,
           coalesce(a.attstattarget::int, -1) AS statistics,
           a.attidentity::text <> '' AS identity, a.attgenerated::text <> '' AS generated,
           a.attacl IS NOT NULL AS acl,
           EXISTS (SELECT 1 FROM unnest(a.attoptions) AS o(option)
                   WHERE split_part(o.option, '=', 1) IN ('n_distinct', 'n_distinct_inherited'))
             OR a.attfdwoptions IS NOT NULL OR {compression} AS options
    FROM pg_attribute a
    JOIN pg_type t ON t.oid = a.atttypid
    LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    WHERE a.attrelid = %(table)s::oid AND a.attname = %(column)s AND a.attnum > 0
      AND NOT a.attisdropped
"""

_PRIMARY_KEY = """
    SELECT (SELECT array_agg(a.attname::text ORDER BY u.i)
            FROM unnest(k.conkey) WITH ORDINALITY AS u(n, i)
            JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.n) AS columns,
           %(attnum)s::int2 = ANY(k.conkey) AS includes
    FROM pg_constraint k WHERE k.conrelid = %(table)s::oid AND k.contype = 'p'
"""

_FOREIGN_KEYS = """
    SELECT k.conname::text AS name, k.conrelid::regclass::text AS source,
           k.confrelid::regclass::text AS target,
           k.conrelid = %(table)s::oid AND %(attnum)s::int2 = ANY(k.conkey) AS own
    FROM pg_constraint k
    WHERE k.contype = 'f'
      AND ((k.conrelid = %(table)s::oid AND %(attnum)s::int2 = ANY(k.conkey))
           OR (k.confrelid = %(table)s::oid AND %(attnum)s::int2 = ANY(k.confkey)))
    ORDER BY 2, 1
"""

# Everything that depends on the column, with what it takes to tell the objects the
# sequence carries over (the table's own indexes, CHECK and UNIQUE constraints, the
# column's default, the sequence's own trigger) from the others.
_DEPENDENTS = """
    SELECT pg_describe_object(d.classid, d.objid, d.objsubid) AS description,
           d.classid::regclass::text AS catalog,
           CASE d.classid
             WHEN 'pg_class'::regclass THEN
               (SELECT r.relkind::text FROM pg_class r WHERE r.oid = d.objid)
             WHEN 'pg_constraint'::regclass THEN
               (SELECT k.contype::text
                       || CASE WHEN k.conrelid = %(table)s::oid THEN '' ELSE '*' END
                FROM pg_constraint k WHERE k.oid = d.objid)
             WHEN 'pg_attrdef'::regclass THEN
               (SELECT CASE WHEN ad.adnum = %(attnum)s::int2 THEN 'own' ELSE 'other' END
                FROM pg_attrdef ad WHERE ad.oid = d.objid)
             WHEN 'pg_trigger'::regclass THEN
               (SELECT tg.tgname::text FROM pg_trigger tg WHERE tg.oid = d.objid)
           END AS kind
    FROM pg_depend d
    WHERE d.refclassid = 'pg_class'::regclass AND d.refobjid = %(table)s::oid
      AND d.refobjsubid = %(attnum)s::int2
    ORDER BY 1
"""

_INDEXES = """
    SELECT i.relname::text AS name, pg_get_indexdef(x.indexrelid) AS definition,
           k.conname::text AS constraint, k.contype::text AS contype,
           coalesce(k.condeferrable, false) AS deferrable,
           coalesce(k.condeferred, false) AS deferred,
           obj_description(x.indexrelid, 'pg_class') AS comment,
           obj_description(k.oid, 'pg_constraint') AS constraint_comment,
           (SELECT array_agg(ia.attname::text ORDER BY ia.attnum) FROM pg_attribute ia
            WHERE ia.attrelid = x.indexrelid) AS columns,
           CASE
             WHEN NOT x.indisvalid THEN 'is INVALID (drop it or build it again first)'
             WHEN x.indisclustered THEN 'is the table''s CLUSTER index'
             WHEN x.indisreplident THEN 'is the table''s replica identity'
             WHEN i.reltablespace <> 0 THEN 'is in a tablespace of its own'
             WHEN EXISTS (SELECT 1 FROM pg_attribute ia WHERE ia.attrelid = x.indexrelid
                          AND coalesce(ia.attstattarget::int, -1) >= 0)
               THEN 'has statistics targets of its own'
           END AS problem
    FROM pg_index x
    JOIN pg_class i ON i.oid = x.indexrelid
    LEFT JOIN pg_constraint k ON k.conindid = x.indexrelid AND k.conrelid = x.indrelid
         AND k.contype IN ('p', 'u', 'x')
    WHERE x.indrelid = %(table)s::oid
      AND (%(attnum)s::int2 = ANY(x.indkey::int2[])
           OR EXISTS (SELECT 1 FROM pg_depend d
                      WHERE d.classid = 'pg_class'::regclass AND d.objid = x.indexrelid
                        AND d.refclassid = 'pg_class'::regclass AND d.refobjid = x.indrelid
                        AND d.refobjsubid = %(attnum)s::int2))
    ORDER BY 1
"""

_CHECKS = """
    SELECT k.conname::text AS name, pg_get_constraintdef(k.oid) AS definition,
           k.convalidated AS validated, obj_description(k.oid, 'pg_constraint') AS comment
    FROM pg_constraint k
    WHERE k.conrelid = %(table)s::oid AND k.contype = 'c' AND %(attnum)s::int2 = ANY(k.conkey)
    ORDER BY 1
"""

# PostgreSQL 18+: NOT NULL is a constraint of its own, with a name.
_NOT_NULL = """
    SELECT k.conname::text AS name, k.convalidated AS validated,
           obj_description(k.oid, 'pg_constraint') IS NOT NULL AS commented
    FROM pg_constraint k
    WHERE k.conrelid = %(table)s::oid AND k.contype = 'n' AND k.conkey = ARRAY[%(attnum)s]::int2[]
"""

_TRIGGERS = """
    SELECT t.tgname::text AS name, t.tgtype::int AS type,
           coalesce(array_length(t.tgattr::int2[], 1), 0) AS columns
    FROM pg_trigger t WHERE t.tgrelid = %(table)s::oid AND NOT t.tgisinternal ORDER BY 1
"""

_RULES = """
    SELECT r.rulename::text AS name FROM pg_rewrite r
    WHERE r.ev_class = %(table)s::oid AND r.rulename <> '_RETURN' ORDER BY 1
"""

_PUBLICATIONS = """
    SELECT p.pubname::text AS name FROM pg_publication_tables p
    WHERE p.schemaname = %(schema)s AND p.tablename = %(name)s ORDER BY 1
"""

_REVIEW = "run the plain ALTER after review"
_WINDOW = "run the plain ALTER in a maintenance window"


def _rows(cursor: Any, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    cursor.execute(sql, params)
    names = [column.name for column in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def column_facts(
    cursor: Any, table: str, column: str, schema: str | None = None
) -> ColumnFacts | None:
    """Read-only catalog queries about ``table.column``; ``None`` when either does not exist.

    ``cursor`` is a psycopg 3 cursor (a ``ClientCursor`` inside a ``READ ONLY``
    transaction will do). Without ``schema`` the table is found through the search_path.
    """
    if schema is None:
        where = "WHERE c.oid = to_regclass(quote_ident(%(name)s))"
    else:
        where = "WHERE c.relname = %(name)s AND n.nspname = %(schema)s"
    found = _rows(cursor, _TABLE + where, {"name": table, "schema": schema})
    if not found:
        return None
    relation = found[0]
    params: dict[str, Any] = {
        "table": relation["oid"],
        "column": column,
        "schema": relation["schema"],
        "name": relation["name"],
    }
    version = int(cursor.connection.info.server_version)
    compression = "a.attcompression::text <> ''" if version >= 140000 else "false"
    rows = _rows(cursor, _COLUMN.format(compression=compression), params)
    if not rows:
        return None
    attribute = rows[0]
    params["attnum"] = attribute["attnum"]
    where_ = f"{relation['schema']}.{relation['name']}"
    keys = _rows(cursor, _PRIMARY_KEY, params)
    indexes = _rows(cursor, _INDEXES, params)
    not_null = _rows(cursor, _NOT_NULL, params) if version >= 180000 else []
    blockers = [
        *_table_blockers(relation, where_),
        *_column_blockers(attribute, keys, column, where_),
        *_key_blockers(cursor, params, column),
        *_dependent_blockers(cursor, params, column),
        *_trigger_blockers(cursor, params, where_),
        *(
            f"The NOT NULL constraint {constraint['name']} on {column} is NOT VALID or has a "
            f"comment, which the online form does not carry over: {_REVIEW}."
            for constraint in not_null
            if not constraint["validated"] or constraint["commented"]
        ),
        *(
            f"The index {index['name']} on {column} {index['problem']}, which the online form "
            f"does not carry over: {_REVIEW}."
            for index in indexes
            if index["problem"] is not None
        ),
    ]
    return ColumnFacts(
        schema=relation["schema"],
        table=relation["name"],
        column=column,
        type=attribute["type"],
        type_name=attribute["type_name"],
        not_null=attribute["not_null"],
        not_null_constraint=not_null[0]["name"] if not_null else None,
        default=attribute["default"],
        comment=attribute["comment"],
        statistics=attribute["statistics"] if attribute["statistics"] >= 0 else None,
        primary_key=tuple(keys[0]["columns"]) if keys else (),
        indexes=tuple(
            IndexFacts(
                name=index["name"],
                definition=index["definition"],
                constraint=index["constraint"],
                deferrable=index["deferrable"],
                deferred=index["deferred"],
                comment=index["comment"],
                constraint_comment=index["constraint_comment"],
                columns=tuple(index["columns"]),
            )
            # A primary key or exclusion constraint is reported with the dependents.
            for index in indexes
            if index["contype"] not in {"p", "x"}
        ),
        checks=tuple(CheckFacts(**check) for check in _rows(cursor, _CHECKS, params)),
        blockers=tuple(dict.fromkeys(blockers)),
    )


def _table_blockers(relation: dict[str, Any], where: str) -> list[str]:
    found = []
    if relation["relkind"] == "p" or relation["partition"]:
        found.append(
            f"{where} is partitioned (or a partition): change the type with the plain ALTER "
            "in a maintenance window, or partition by partition after review."
        )
    elif relation["relkind"] != "r":
        found.append(f"{where} is not an ordinary table: {_REVIEW}.")
    if relation["inherits"]:
        found.append(
            f"{where} has inheritance parents or children, which the online form does not "
            f"carry over: {_WINDOW}."
        )
    if relation["typed"]:
        found.append(f"{where} is a typed table (OF type), which takes no new column: {_REVIEW}.")
    if relation["rls"]:
        found.append(
            f"{where} has row-level security, under which the backfill may not see every row: "
            f"{_WINDOW}."
        )
    return found


def _column_blockers(
    attribute: dict[str, Any], keys: list[dict[str, Any]], column: str, where: str
) -> list[str]:
    found = []
    if not keys:
        found.append(
            f"{where} has no primary key to backfill it in batches by: add one first, or {_WINDOW}."
        )
    elif keys[0]["includes"]:
        found.append(
            f"{column} is part of the primary key of {where}, which the online form does not "
            f"rebuild: {_WINDOW}."
        )
    kinds = {
        "identity": "an identity column",
        "generated": "a generated column",
        "acl": "a column with column-level privileges",
        "options": "a column with storage, compression or statistics options of its own",
    }
    for flag, what in kinds.items():
        if attribute[flag]:
            found.append(
                f"{column} is {what}, which the online form does not carry over: {_REVIEW}."
            )
    return found


def _key_blockers(cursor: Any, params: dict[str, Any], column: str) -> list[str]:
    found = []
    for key in _rows(cursor, _FOREIGN_KEYS, params):
        if key["own"]:
            found.append(
                f"{column} has the foreign key {key['name']} to {key['target']}: drop it, change "
                f"the type and add it again NOT VALID, or {_WINDOW}."
            )
        else:
            found.append(
                f"{column} is referenced by the foreign key {key['name']} of {key['source']}: "
                "change both columns together with the plain ALTER in a maintenance window."
            )
    return found


def _dependent_blockers(cursor: Any, params: dict[str, Any], column: str) -> list[str]:
    found = []
    own_trigger = sync_trigger_name(column)
    for row in _rows(cursor, _DEPENDENTS, params):
        catalog, kind = row["catalog"], row["kind"]
        carried = (
            (catalog == "pg_class" and kind == "i")
            or (catalog == "pg_constraint" and kind in {"c", "u", "n"})
            or (catalog == "pg_attrdef" and kind == "own")
            or (catalog == "pg_trigger" and kind == own_trigger)
            # Foreign keys are reported on their own, with what to do.
            or (catalog == "pg_constraint" and kind in {"f", "f*"})
        )
        if carried:
            continue
        if catalog == "pg_class" and kind == "S":
            found.append(f"{column} owns {row['description']} (serial): {_WINDOW}.")
        elif catalog == "pg_constraint" and kind == "p":
            continue  # the primary key: reported with the column
        else:
            found.append(
                f"{row['description']} depends on {column} and would have to be dropped and "
                f"created again: {_REVIEW}."
            )
    return found


def _trigger_blockers(cursor: Any, params: dict[str, Any], where: str) -> list[str]:
    found = []
    own = sync_trigger_name(params["column"])
    for trigger in _rows(cursor, _TRIGGERS, params):
        name, tgtype = trigger["name"], trigger["type"]
        if name == own:
            continue
        if tgtype & _UPDATE and not trigger["columns"]:
            found.append(
                f"The trigger {name} on {where} fires on every UPDATE, so the backfill's "
                f"updates would fire it: {_REVIEW}."
            )
        elif tgtype & _ROW and tgtype & _BEFORE and tgtype & (_INSERT | _UPDATE):
            found.append(
                f"The BEFORE trigger {name} on {where} may change a row after the online "
                f"form's trigger has converted it: {_REVIEW}."
            )
    for rule in _rows(cursor, _RULES, params):
        found.append(
            f"{where} has the rule {rule['name']}, which would rewrite the backfill's updates: "
            f"{_REVIEW}."
        )
    for publication in _rows(cursor, _PUBLICATIONS, params):
        found.append(
            f"{where} is in the publication {publication['name']}: its subscribers have no "
            "shadow column and would stop replicating; run the plain ALTER on both sides."
        )
    return found
