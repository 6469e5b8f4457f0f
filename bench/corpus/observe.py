"""Apply corpus migrations to real tables with rows and report what PostgreSQL did.

Run by ``tests/test_corpus_labels.py`` in a child process, from this directory, with
``DJANGO_SETTINGS_MODULE=settings`` and ``DATABASE_URL`` naming an empty schema (through
``?options=-c search_path=...``). Reads a JSON list of claims on stdin::

    [{"app": "corpus_shop", "name": "0004_alter_orderline_quantity",
      "tables": ["corpus_shop_orderline"], "measure": true}, ...]

in plan order, and for each one:

1. migrates the app to the migration before it (Django's own ``migrate``; a migration that
   PostgreSQL refuses is recorded as ``failed`` and faked, so the walk can go on);
2. if ``measure``: fills each table with rows (and the tables it references with a few),
   ``ANALYZE``s them, then runs the migration's statements (rendered as ``sqlmigrate`` does,
   against the real schema) as Django would (an atomic migration in one transaction), reading
   ``pg_class.relfilenode`` and, in a transaction, ``pg_stat_xact_user_tables.seq_scan`` of
   each table before and after; then records the migration as applied;
3. otherwise applies the migration with ``migrate`` and reports whether it failed.

Prints one JSON object per claim on stdout: ``{"app", "name", "failed", "error",
"tables": {table: {"rewritten": bool, "seq_scans": int | None}}}`` (``None``: not
counted, the migration is not atomic).
"""

from __future__ import annotations

import contextlib
import json
import sys
from typing import Any

import django

ROWS = 2000
PARENT_ROWS = 20


def main() -> None:
    django.setup()
    claims: list[dict[str, Any]] = json.load(sys.stdin)
    for claim in claims:
        print(json.dumps(observe(claim)), flush=True)


def observe(claim: dict[str, Any]) -> dict[str, Any]:
    from django.core.management import call_command
    from django.core.management.commands.migrate import Command as CoreMigrate
    from django.db import connection
    from django.db.migrations.loader import MigrationLoader

    app, name = claim["app"], claim["name"]
    migration = MigrationLoader(connection).get_migration(app, name)
    before = [dep for dep in migration.dependencies if dep[0] == app]
    if before:
        migrate(app, before[0][1], [])
    else:
        call_command(CoreMigrate(), app, "zero", verbosity=0)
    out: dict[str, Any] = {"app": app, "name": name, "failed": False, "error": None}
    if not claim.get("measure"):
        failures: list[str] = []
        migrate(app, name, failures)
        out["failed"] = bool(failures)
        out["error"] = failures[-1] if failures else None
        return out
    filled: set[str] = set()
    for table in claim["tables"]:
        fill(connection, table, ROWS, filled)
    out.update(measure(migration, claim["tables"]))
    return out


def migrate(app: str, name: str, failures: list[str]) -> None:
    """Migrate ``app`` to ``name``; fake (and note) each migration that cannot be applied."""
    from django.core.management import call_command
    from django.core.management.commands.migrate import Command as CoreMigrate
    from django.db import connection
    from django.db.migrations.loader import MigrationLoader

    while True:
        try:
            call_command(CoreMigrate(), app, name, verbosity=0, interactive=False)
            return
        except Exception as exc:
            loader = MigrationLoader(connection)
            plan = loader.graph.forwards_plan((app, name))
            pending = [key for key in plan if key not in loader.applied_migrations]
            if not pending:
                raise
            failures.append(f"{pending[0][0]}.{pending[0][1]}: {exc}")
            call_command(CoreMigrate(), *pending[0], fake=True, verbosity=0)
            if pending[0] == (app, name):
                return


def measure(migration: Any, tables: list[str]) -> dict[str, Any]:
    """Run ``migration``'s statements as Django would; what happened to each table."""
    from django.db import connection, transaction
    from django.db.migrations.loader import MigrationLoader
    from django.db.migrations.recorder import MigrationRecorder

    key = (migration.app_label, migration.name)
    loader = MigrationLoader(connection)
    statements = [
        s
        for s in loader.collect_sql([(loader.graph.nodes[key], False)])
        if not s.lstrip().startswith("--")
    ]
    atomic = bool(migration.atomic)
    # An atomic migration in one transaction; otherwise statement by statement (then scans
    # cannot be counted, only rewrites).
    with transaction.atomic() if atomic else contextlib.nullcontext():
        first = snapshot(connection, tables)
        with connection.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)
        second = snapshot(connection, tables)
    MigrationRecorder(connection).record_applied(*key)
    return {
        "statements": statements,
        "tables": {
            table: {
                "rewritten": first[table][0] != second[table][0],
                "seq_scans": second[table][1] - first[table][1] if atomic else None,
            }
            for table in tables
        },
    }


def snapshot(connection: Any, tables: list[str]) -> dict[str, tuple[int, int]]:
    """``relfilenode`` and this transaction's sequential scans of each table."""
    result = {}
    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(
                "SELECT c.relfilenode, coalesce(s.seq_scan, 0) FROM pg_class c "
                "LEFT JOIN pg_stat_xact_user_tables s ON s.relid = c.oid "
                "WHERE c.oid = to_regclass(%s)",
                [table],
            )
            row = cursor.fetchone()
            if row is None:
                raise LookupError(f"table {table} does not exist")
            result[table] = (int(row[0]), int(row[1]))
    return result


def fill(connection: Any, table: str, rows: int, filled: set[str]) -> None:
    """Give ``table`` at least ``rows`` rows (its referenced tables a few), then ANALYZE it."""
    if table in filled:
        return
    filled.add(table)
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attidentity <> '',
                   d.adbin IS NOT NULL,
                   (SELECT confrelid::regclass::text FROM pg_constraint f
                    WHERE f.conrelid = a.attrelid AND f.contype = 'f'
                      AND f.conkey = ARRAY[a.attnum])
            FROM pg_attribute a
            LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
            WHERE a.attrelid = to_regclass(%s) AND a.attnum > 0 AND NOT a.attisdropped
            ORDER BY a.attnum
            """,
            [table],
        )
        columns = cursor.fetchall()
        cursor.execute(f'SELECT count(*) FROM "{table}"')
        have = int(cursor.fetchone()[0])
    names: list[str] = []
    values: list[str] = []
    for column, type_name, identity, has_default, parent in columns:
        if identity or has_default:
            continue
        if parent is not None:
            fill(connection, parent, PARENT_ROWS, filled)
            value = f'(SELECT min(id) FROM "{parent}")'
        else:
            value = _value(type_name)
        names.append(f'"{column}"')
        values.append(value)
    with connection.cursor() as cursor:
        if have < rows:
            cursor.execute(
                f'INSERT INTO "{table}" ({", ".join(names)}) '
                f"SELECT {', '.join(values)} FROM generate_series({have + 1}, {rows}) AS g"
            )
        cursor.execute(f'ANALYZE "{table}"')


def _value(type_name: str) -> str:
    """An SQL expression of ``g`` (the row number) for a column of this type."""
    if type_name in ("smallint", "integer", "bigint", "double precision", "real"):
        return "g"
    if type_name.startswith("numeric"):
        return "g + 0.25"
    if type_name.startswith("character varying"):
        length = int(type_name.split("(")[1].rstrip(")")) if "(" in type_name else 100
        return f"left('v' || g, {length})"
    if type_name == "text":
        return "'v' || g"
    if type_name == "boolean":
        return "false"
    if type_name.startswith("timestamp"):
        return "now()"
    if type_name == "date":
        return "current_date"
    if type_name == "uuid":
        return "gen_random_uuid()"
    if type_name == "jsonb":
        return "'{}'::jsonb"
    raise ValueError(f"no filler for type {type_name}")


if __name__ == "__main__":
    main()
