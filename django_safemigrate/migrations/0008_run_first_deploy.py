"""Runs of a database's first deploy are marked, so that an interrupted one is continued
as a first deploy (nothing to review) instead of gating the whole history on the rerun.

``Run.first_deploy`` is nullable without a default: a catalog-only change in PostgreSQL,
and a runner of the previous release inserting during a rolling upgrade leaves it out.
"""

from __future__ import annotations

from django.db import migrations, models


class Migration(migrations.Migration):
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
    ]
