"""The definition checksum of every applied migration, and runs that unapplied.

``MigrationRecord.definition`` is nullable: rows written before it existed have none,
and a runner of the previous release inserting during a rolling upgrade leaves it out.
Adding a nullable column without a default is a catalog-only change in PostgreSQL.
``Run.outcome`` gains ``unapplied`` (a choices change: no SQL).
"""

from __future__ import annotations

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("django_safemigrate", "0006_ledger_guards"),
    ]

    operations = [
        migrations.AddField(
            model_name="migrationrecord",
            name="definition",
            field=models.CharField(blank=True, max_length=80, null=True),
        ),
        migrations.AlterField(
            model_name="run",
            name="outcome",
            field=models.CharField(
                choices=[
                    ("running", "running"),
                    ("applied", "applied"),
                    ("unapplied", "unapplied"),
                    ("nothing_to_do", "nothing_to_do"),
                    ("planned", "planned"),
                    ("failed", "failed"),
                    ("blocked", "blocked"),
                    ("lock_timeout", "lock_timeout"),
                    ("interrupted", "interrupted"),
                ],
                default="running",
                max_length=20,
            ),
        ),
    ]
