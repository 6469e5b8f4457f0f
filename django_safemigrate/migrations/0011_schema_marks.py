"""The ledger's high-water mark kept per schema.

Every run counts the ledger before it writes and again when it finishes
(:mod:`django_safemigrate.execution.continuity`). Counted over the whole ledger, that work
grows with every tenant of a schema-per-tenant database and with every deploy; counted over
the runs of the run's own schema (``Run.schema``, indexed by 0012), it stays that of one
schema's history however large the fleet.

``SchemaMark``: one row per schema, the size of that schema's history when its last run
finished. A new table rather than a column of ``LedgerMark``: a runner of the previous
release, during a rolling upgrade, updates every row of ``LedgerMark`` with the size of the
whole ledger, which would raise every schema's mark above its history. ``LedgerMark`` stays
the mark of the whole ledger, read for a schema with no mark of its own yet. Append-only
like the rest of the ledger: the triggers of 0006 refuse DELETE and TRUNCATE (each run
updates its schema's row).
"""

from __future__ import annotations

from typing import Any

from django.db import migrations, models

TABLE = "django_safemigrate_schemamark"


def guard(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor == "postgresql":
        # The function comes with 0006_ledger_guards.
        for statement in (
            f"CREATE TRIGGER django_safemigrate_append_only BEFORE DELETE ON {TABLE} "
            "FOR EACH ROW EXECUTE FUNCTION django_safemigrate_ledger_append_only()",
            f"CREATE TRIGGER django_safemigrate_no_truncate BEFORE TRUNCATE ON {TABLE} "
            "FOR EACH STATEMENT EXECUTE FUNCTION django_safemigrate_ledger_append_only()",
        ):
            schema_editor.execute(statement, params=None)


def unguard(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor == "postgresql":
        for statement in (
            f"DROP TRIGGER django_safemigrate_no_truncate ON {TABLE}",
            f"DROP TRIGGER django_safemigrate_append_only ON {TABLE}",
        ):
            schema_editor.execute(statement, params=None)


class Migration(migrations.Migration):
    # One transaction: a new, empty table and its triggers; the ledger's own migrations
    # apply or roll back whole.
    safemigrate_online = False
    safemigrate_acknowledge = {
        "SM401": "creates the new table's two append-only triggers; writes no rows",
    }

    dependencies = [
        ("django_safemigrate", "0010_run_schema"),
    ]

    operations = [
        migrations.CreateModel(
            name="SchemaMark",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("schema", models.CharField(max_length=63, unique=True)),
                ("runs", models.BigIntegerField(default=0)),
                ("records", models.BigIntegerField(default=0)),
                ("steps", models.BigIntegerField(default=0)),
                ("updated_at", models.DateTimeField()),
            ],
            options={
                "verbose_name": "schema mark",
                "verbose_name_plural": "schema marks",
            },
        ),
        migrations.RunPython(guard, unguard),
    ]
