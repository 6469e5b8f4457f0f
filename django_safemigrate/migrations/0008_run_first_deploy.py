"""First deploys that survive interruptions, governed rollbacks, approvals in the ledger.

- ``Run.first_deploy``: runs of a database's first deploy are marked, so that an
  interrupted one is continued as a first deploy (nothing to review) instead of gating the
  whole history on the rerun.
- ``GovernedMigration.direction``: a rollback (unapplying a migration) is judged and
  reviewed apart from applying it. The column is added with a default that stays in the
  database (``NOT NULL DEFAULT 'forward'``, a catalog-only change since PostgreSQL 11):
  a runner of the previous release inserting forward records during a rolling upgrade
  leaves it out. Its uniqueness moves from (app, name) to (app, name, direction); the new
  constraint is built before the old one goes, on a table of a few rows per migration.
- ``MigrationRecord.approval``: the review that let a migration run.

The nullable columns are added without a default: catalog-only changes.
"""

from __future__ import annotations

from django.db import migrations, models

DIRECTION_SQL = (
    "ALTER TABLE django_safemigrate_governedmigration "
    "ADD COLUMN direction varchar(10) NOT NULL DEFAULT 'forward'"
)
DIRECTION_REVERSE_SQL = "ALTER TABLE django_safemigrate_governedmigration DROP COLUMN direction"


class Migration(migrations.Migration):
    # One transaction: the tables are a few rows per migration, and the ledger's own
    # migrations must apply or roll back whole (a run that finds the ledger lost stops
    # inside this migration's transaction, before its steps could be recorded).
    safemigrate_online = False
    safemigrate_acknowledge = {
        "SM103": "a few rows per migration: the unique index is built in an instant",
        "SM209": "replaced in the same migration by (app_label, name, direction), built "
        "before it goes; no code of this app uses ON CONFLICT on it, and its "
        "update_or_create-like writes run under the migration lock",
    }

    dependencies = [
        ("django_safemigrate", "0007_ledger_definitions"),
    ]

    operations = [
        migrations.AddField(
            model_name="run",
            name="first_deploy",
            field=models.BooleanField(
                blank=True, help_text="Part of the database's first deploy.", null=True
            ),
        ),
        migrations.AddField(
            model_name="migrationrecord",
            name="approval",
            field=models.TextField(blank=True, help_text="The review that let it run.", null=True),
        ),
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(DIRECTION_SQL, DIRECTION_REVERSE_SQL),
            ],
            state_operations=[
                migrations.AddField(
                    model_name="governedmigration",
                    name="direction",
                    field=models.CharField(
                        choices=[("forward", "forward"), ("backward", "backward")],
                        default="forward",
                        max_length=10,
                    ),
                ),
            ],
        ),
        migrations.AddConstraint(
            model_name="governedmigration",
            constraint=models.UniqueConstraint(
                fields=("app_label", "name", "direction"), name="safemigrate_governed_direction"
            ),
        ),
        migrations.RemoveConstraint(
            model_name="governedmigration",
            name="safemigrate_governed_unique",
        ),
    ]
