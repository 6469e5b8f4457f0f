"""The schema each run migrated, so that tenants of one database keep apart.

``Run.schema``: the ``current_schema()`` of the runner's connection. In a schema-per-tenant
database every tenant's runs share these tables (this app lives in the shared schema), and
step records, checksums, interrupted runs and first deploys are read per schema.

On PostgreSQL the column is added with ``DEFAULT current_schema()``, a stable function:
PostgreSQL evaluates it once, at the ``ALTER TABLE``, and keeps the value in the catalog
for the rows that exist (no rewrite, no scan). Those rows are given the schema this
migration runs in, which is where they were written unless tenants shared the tables
before; a runner of the previous release inserting runs during a rolling upgrade leaves
the column out and gets its own session's schema. The default stays in the database only
(like ``GovernedMigration.direction`` in 0008): the runner always names the schema. Another
database (a project's second, non-PostgreSQL one, migrated by Django's ``migrate``) gets
the column with an empty default.
"""

from __future__ import annotations

from typing import Any

from django.db import migrations, models

TABLE = "django_safemigrate_run"


def add_column(apps: Any, schema_editor: Any) -> None:
    quote = schema_editor.quote_name
    default = "current_schema()" if schema_editor.connection.vendor == "postgresql" else "''"
    schema_editor.execute(
        f"ALTER TABLE {quote(TABLE)} ADD COLUMN {quote('schema')} varchar(63) "
        f"DEFAULT {default} NOT NULL"
    )


def drop_column(apps: Any, schema_editor: Any) -> None:
    quote = schema_editor.quote_name
    schema_editor.execute(f"ALTER TABLE {quote(TABLE)} DROP COLUMN {quote('schema')}")


class Migration(migrations.Migration):
    safemigrate_acknowledge = {
        "SM401": "adds one column with a stable default (catalog-only on PostgreSQL); "
        "writes no rows",
    }

    dependencies = [
        ("django_safemigrate", "0009_archive"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RunPython(add_column, drop_column)],
            state_operations=[
                migrations.AddField(
                    model_name="run",
                    name="schema",
                    field=models.CharField(
                        blank=True,
                        default="",
                        help_text="The schema it migrated.",
                        max_length=63,
                    ),
                ),
            ],
        ),
    ]
