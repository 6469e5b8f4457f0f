"""The runs of one schema found by index: what a run reads of the ledger is its schema's.

A run reads its schema's runs (the steps done, the interrupted runs, the first deploy, the
high-water mark, :mod:`django_safemigrate.execution.continuity`); in a schema-per-tenant
database, without this index each read would go over every tenant's runs.

The index is built with ``CREATE INDEX CONCURRENTLY`` on PostgreSQL (the runs table of a
large fleet is written by every deploy; nothing blocks those writes while the index
builds), so this migration is not atomic, and it is one statement that can be run again:
an invalid index left by an interrupted build is dropped and built again, a valid one is
kept. Another database (a project's second, non-PostgreSQL one, migrated by Django's
``migrate``) gets a plain index.
"""

from __future__ import annotations

from typing import Any

from django.db import migrations, models

TABLE = "django_safemigrate_run"
INDEX = "django_safemigrate_run_schema"


def add_index(apps: Any, schema_editor: Any) -> None:
    quote = schema_editor.quote_name
    connection = schema_editor.connection
    if connection.vendor != "postgresql":
        schema_editor.execute(f"CREATE INDEX {quote(INDEX)} ON {quote(TABLE)} ({quote('schema')})")
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass(%s)", [quote(INDEX)]
        )
        row = cursor.fetchone()
    if row is not None and row[0]:
        return  # built by an earlier attempt that stopped after it
    if row is not None:
        schema_editor.execute(f"DROP INDEX CONCURRENTLY {quote(INDEX)}")
    schema_editor.execute(
        f"CREATE INDEX CONCURRENTLY {quote(INDEX)} ON {quote(TABLE)} ({quote('schema')})"
    )


def drop_index(apps: Any, schema_editor: Any) -> None:
    quote = schema_editor.quote_name
    concurrently = " CONCURRENTLY" if schema_editor.connection.vendor == "postgresql" else ""
    if schema_editor.connection.vendor == "mysql":
        schema_editor.execute(f"DROP INDEX {quote(INDEX)} ON {quote(TABLE)}")
        return
    schema_editor.execute(f"DROP INDEX{concurrently} IF EXISTS {quote(INDEX)}")


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("django_safemigrate", "0011_schema_marks"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RunPython(add_index, drop_index)],
            state_operations=[
                migrations.AddIndex(
                    model_name="run",
                    index=models.Index(fields=["schema"], name=INDEX),
                ),
            ],
        ),
    ]
