"""The schema each run migrated, so that tenants of one database keep apart.

``Run.schema``: the ``current_schema()`` of the runner's connection. In a schema-per-tenant
database every tenant's runs share these tables (this app lives in the shared schema), and
step records, checksums, interrupted runs and first deploys are read per schema.

The column is added with ``DEFAULT current_schema()``, a stable function: PostgreSQL
evaluates it once, at the ``ALTER TABLE``, and keeps the value in the catalog for the rows
that exist (no rewrite, no scan). Those rows are given the schema this migration runs in,
which is where they were written unless the tables were shared by tenants before; a
runner of the previous release inserting runs during a rolling upgrade leaves the column
out and gets its own session's schema.
"""

from __future__ import annotations

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("django_safemigrate", "0009_archive"),
    ]

    operations = [
        migrations.AddField(
            model_name="run",
            name="schema",
            field=models.CharField(
                db_default=models.Func(function="current_schema", output_field=models.CharField()),
                help_text="The schema it migrated.",
                max_length=63,
            ),
        ),
    ]
