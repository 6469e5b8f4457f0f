"""Put archived data back (``manage.py restorearchive``).

An archive (:mod:`.archive`) of a dropped column holds the table's primary key and the
column; one of a dropped table holds all its columns. Restoring:

* a column: the column is added back (nullable, with the archived type) when the target
  table lacks it, then each row gets its value by primary key. Rows deleted since the
  drop stay deleted; rows added since keep what they have.
* a table: the archived rows are inserted into the table, which must exist again (migrate
  back to before the ``DeleteModel``, which recreates it empty), skipping rows whose
  primary key is already there; the primary key's sequence is moved past them.

Everything happens in one transaction: all of it, or nothing. The plan is read from the
catalogs first, so every problem (an unknown archive, a target that is missing, a type
that differs) is reported before anything changes, and ``--dry-run`` shows the SQL.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from django.db import transaction

from django_safemigrate.exceptions import UsageError


class RestoreRefused(UsageError):
    """The archive cannot be restored as asked; nothing was changed."""


@dataclasses.dataclass(frozen=True)
class Restore:
    """What restoring one archive does: a line for each step, and its SQL."""

    summary: str
    target: str
    #: (what it does, SQL): run in order, in one transaction.
    statements: tuple[tuple[str, str], ...]


NOTHING = "Nothing was changed."


def _columns(connection: Any, relation: str) -> dict[str, str] | None:
    """``{column: type}`` of ``relation`` (a quoted, possibly qualified name); ``None``
    when there is no such table."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s)", [relation])
        if cursor.fetchone()[0] is None:
            return None
        cursor.execute(
            "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
            "WHERE attrelid = to_regclass(%s) AND attnum > 0 AND NOT attisdropped "
            "ORDER BY attnum",
            [relation],
        )
        return dict(cursor.fetchall())


def plan_restore(connection: Any, archive_id: int, into: str | None) -> Restore:
    """How archive ``archive_id`` goes back (into ``into``: ``TABLE.COLUMN`` for a column,
    ``TABLE`` for a table; by default where it came from). Reads the catalogs only."""
    archive = _find(connection, archive_id)
    quote = connection.ops.quote_name
    source = f"{quote(archive.archive_schema)}.{quote(archive.archive_table)}"
    archived = _columns(connection, source)
    where = (
        f"archive {archive.pk} ({archive.source}, dropped by "
        f"{archive.app_label}.{archive.name} in run {archive.run_id})"
    )
    if archived is None:
        raise RestoreRefused(
            f"The table {archive.archive_schema}.{archive.archive_table} of {where} does not "
            f"exist any more: it was dropped after the archive was made. {NOTHING}"
        )
    keys = archive.primary_key.split(",")
    table, column = archive.source_table, archive.source_column or None
    if into:
        if column is not None:
            table, _, named = into.partition(".")
            column = named or column
        else:
            table = into
        if not table or (archive.source_column == "" and "." in into):
            shape = "TABLE.COLUMN (or TABLE)" if archive.source_column else "TABLE"
            raise RestoreRefused(f"--into is {into!r}, but {where} needs {shape}. {NOTHING}")
    target = _columns(connection, quote(table))
    if target is None:
        how = (
            f"Migrate back to before {archive.app_label}.{archive.name}"
            if table == archive.source_table
            else "Create it"
        )
        raise RestoreRefused(
            f"The table {table} to restore {where} into does not exist. {how}, or name "
            f"another table with --into. {NOTHING}"
        )
    for key in keys:
        if key not in target:
            raise RestoreRefused(
                f"The table {table} has no column {key}, the primary key the rows of {where} "
                f"are matched by. {NOTHING}"
            )
        if target[key] != archived[key]:
            raise RestoreRefused(
                f"Type mismatch: {table}.{key} is {target[key]}, but the archived primary key "
                f"of {where} is {archived[key]}. {NOTHING}"
            )
    match = " AND ".join(f"t.{quote(k)} = a.{quote(k)}" for k in keys)
    statements: list[tuple[str, str]] = []
    if column is not None:
        statements = _column_statements(
            connection, (archive, where, source), (table, column), target, archived
        )
        return Restore(_summary(archive, source), f"{table}.{column}", tuple(statements))
    for name, kind in archived.items():
        if name not in target:
            raise RestoreRefused(
                f"The table {table} has no column {name}, which {where} holds. Migrate it "
                f"back to the shape it had when it was dropped. {NOTHING}"
            )
        if target[name] != kind:
            raise RestoreRefused(
                f"Type mismatch: {table}.{name} is {target[name]}, but the archived column "
                f"of {where} is {kind}. {NOTHING}"
            )
    names = ", ".join(quote(name) for name in archived)
    picked = ", ".join(f"a.{quote(name)}" for name in archived)
    statements.append(
        (
            f"insert the archived rows whose {', '.join(keys)} is not in {table}",
            f"INSERT INTO {quote(table)} ({names}) SELECT {picked} FROM {source} AS a "
            f"WHERE NOT EXISTS (SELECT 1 FROM {quote(table)} AS t WHERE {match})",
        )
    )
    if len(keys) == 1:
        # A serial or identity key: the next row must not collide with a restored one.
        statements.append(
            (
                f"move the sequence of {table}.{keys[0]}, if it has one, past the restored rows",
                f"SELECT setval(s, m) FROM (SELECT pg_get_serial_sequence("
                f"{_literal(quote(table))}, {_literal(keys[0])}) AS s, max({quote(keys[0])}) "
                f"AS m FROM {quote(table)}) AS x WHERE s IS NOT NULL AND m IS NOT NULL",
            )
        )
    return Restore(_summary(archive, source), table, tuple(statements))


def _column_statements(
    connection: Any,
    what: tuple[Any, str, str],
    into: tuple[str, str],
    target: dict[str, str],
    archived: dict[str, str],
) -> list[tuple[str, str]]:
    """Restoring a column: added when missing (or refused when its type differs), then
    set by primary key. ``what``: the archive, its description, its quoted table."""
    archive, where, source = what
    table, column = into
    quote = connection.ops.quote_name
    keys = archive.primary_key.split(",")
    match = " AND ".join(f"t.{quote(k)} = a.{quote(k)}" for k in keys)
    statements: list[tuple[str, str]] = []
    kept = archive.source_column
    kind = archived[kept]
    if column not in target:
        statements.append(
            (
                f"add the column {table}.{column} ({kind}, nullable)",
                f"ALTER TABLE {quote(table)} ADD COLUMN {quote(column)} {kind} NULL",
            )
        )
    elif target[column] != kind:
        raise RestoreRefused(
            f"Type mismatch: {table}.{column} is {target[column]}, but the archived values "
            f"of {where} are {kind}. Restore into a column of that type (--into "
            f"TABLE.COLUMN, added when missing). {NOTHING}"
        )
    statements.append(
        (
            f"set {table}.{column} by {', '.join(keys)} from the archive",
            f"UPDATE {quote(table)} AS t SET {quote(column)} = a.{quote(kept)} "
            f"FROM {source} AS a WHERE {match}",
        )
    )
    return statements


def _find(connection: Any, archive_id: int) -> Any:
    """The ledger's row of archive ``archive_id``, or :class:`RestoreRefused`."""
    from django_safemigrate.models import Archive

    archive = Archive.objects.using(connection.alias).filter(pk=archive_id).first()
    if archive is None:
        known = list(
            Archive.objects.using(connection.alias).order_by("-id").values_list("id", flat=True)[:5]
        )
        listing = (
            f"the latest are {', '.join(map(str, known))}; the admin lists them under "
            "Archives, or SELECT id, source_table, source_column FROM django_safemigrate_archive"
            if known
            else "no destructive step has been archived on this database"
        )
        raise RestoreRefused(f"There is no archive {archive_id} ({listing}). {NOTHING}")
    return archive


def _literal(text: str) -> str:
    """``text`` as an SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def _summary(archive: Any, source: str) -> str:
    return (
        f"Archive {archive.pk}: {archive.source}, {archive.row_count} row(s) in {source}, "
        f"dropped by {archive.app_label}.{archive.name} (operation {archive.operation_index}, "
        f"{archive.operation}) in run {archive.run_id} at {archive.created_at:%Y-%m-%d %H:%M:%S}."
    )


def run_restore(connection: Any, restore: Restore) -> list[int]:
    """Run ``restore``'s statements in one transaction; the rows each one touched."""
    counts = []
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        for _what, sql in restore.statements:
            cursor.execute(sql)
            counts.append(cursor.rowcount)
    return counts
