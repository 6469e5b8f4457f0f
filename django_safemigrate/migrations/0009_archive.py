"""The archive of what destructive steps dropped, and the recovery-point check's outcome.

- ``Archive``: one row per column or table whose data a destructive step copied into the
  archive schema before dropping it (``SAFEMIGRATE['ARCHIVE']``). Append-only like the
  rest of the ledger: the same triggers as 0006 refuse UPDATE, DELETE and TRUNCATE.
- ``Run.recovery_check``: what the check for a recent recovery point found before the
  run's first destructive migration (``SAFEMIGRATE['BACKUP_CHECK']``). Nullable, without
  a default: a catalog-only change, and a runner of the previous release inserting runs
  during a rolling upgrade leaves it out.
"""

from __future__ import annotations

from typing import Any

import django.db.models.deletion
from django.db import migrations, models

TABLE = "django_safemigrate_archive"


def guard(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor == "postgresql":
        # The function comes with 0006_ledger_guards.
        for statement in (
            f"CREATE TRIGGER django_safemigrate_append_only BEFORE UPDATE OR DELETE ON {TABLE} "
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
    # One transaction: a new table and a nullable column on a table of a few rows per
    # run; the ledger's own migrations apply or roll back whole.
    safemigrate_online = False
    safemigrate_acknowledge = {
        "SM401": "creates the archive table's two append-only triggers; writes no rows",
    }

    dependencies = [
        ("django_safemigrate", "0008_run_first_deploy"),
    ]

    operations = [
        migrations.AddField(
            model_name="run",
            name="recovery_check",
            field=models.TextField(
                blank=True, help_text="What the recovery-point check found.", null=True
            ),
        ),
        migrations.CreateModel(
            name="Archive",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("app_label", models.CharField(max_length=255)),
                ("name", models.CharField(max_length=255)),
                ("operation_index", models.PositiveSmallIntegerField()),
                ("operation", models.CharField(max_length=100)),
                ("source_table", models.CharField(max_length=255)),
                ("source_column", models.CharField(blank=True, max_length=255)),
                ("primary_key", models.CharField(max_length=255)),
                ("archive_schema", models.CharField(max_length=63)),
                ("archive_table", models.CharField(max_length=63)),
                ("row_count", models.BigIntegerField()),
                ("created_at", models.DateTimeField()),
                (
                    "run",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="archives",
                        to="django_safemigrate.run",
                    ),
                ),
            ],
            options={
                "verbose_name": "archive",
                "verbose_name_plural": "archives",
                "ordering": ["-created_at", "-id"],
            },
        ),
        migrations.RunPython(guard, unguard),
    ]
