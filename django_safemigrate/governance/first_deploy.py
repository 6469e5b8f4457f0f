"""Whether a run continues the database's first deploy.

A new database holds no data to lose and no old code uses it, so its first deploy
applies the whole history without reviews or phases (``GOVERN_FRESH_DATABASE`` says
otherwise). A first deploy killed or failed half-way leaves a database that is no longer
empty; the rerun must still be the first deploy, or it would ask reviews of the whole
history. So a run that begins on an empty database marks its ledger row
(``Run.first_deploy``), and a later run continues the first deploy while:

- no run of the first deploy has completed (ended ``applied`` or ``nothing_to_do``), and
- every migration applied on the database was applied (or faked) by a run of the first
  deploy: a migration applied any other way (Django's own ``migrate`` with the override
  switched off, a restored dump) ends it, so a stale mark can never switch the gate off
  for a database that is in use.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import DatabaseError

from django_safemigrate.enums import MigrationOutcome, RunOutcome

APP_LABEL = "django_safemigrate"

Key = tuple[str, str]

NEW_DATABASE = "nothing is applied on this database yet"

#: How a run of the first deploy completes it.
_COMPLETED = (RunOutcome.APPLIED.value, RunOutcome.NOTHING_TO_DO.value)
#: How a run of the first deploy put a migration in place.
_PUT_IN_PLACE = (MigrationOutcome.APPLIED.value, MigrationOutcome.FAKED.value)


def first_deploy(connection: Any, applied: Iterable[Key], *, history_readable: bool) -> str | None:
    """Why a run on ``connection`` is (or continues) the first deploy; ``None`` when not.

    ``applied``: the migrations applied on the database; ``history_readable``: the ledger's
    tables exist and can be read.
    """
    others = {key for key in applied if key[0] != APP_LABEL}
    if not others:
        return NEW_DATABASE
    if not history_readable:
        return None
    from django_safemigrate.execution.ledger import current_schema
    from django_safemigrate.models import MigrationRecord, Run

    using = connection.alias
    try:
        # Per schema: each tenant of a schema-per-tenant database has a first deploy.
        schema = current_schema(connection)
        runs = Run.objects.using(using).filter(first_deploy=True, schema=schema)
        first = runs.order_by("started_at", "id").first()
        if first is None or runs.filter(outcome__in=_COMPLETED).exists():
            return None
        recorded = set(
            MigrationRecord.objects.using(using)
            .filter(run__first_deploy=True, run__schema=schema, outcome__in=_PUT_IN_PLACE)
            .values_list("app_label", "name")
        )
    except DatabaseError:
        # A ledger that cannot be read says nothing about a first deploy: govern.
        return None
    if not others <= recorded:
        return None
    return (
        f"this database's first deploy, begun {first.started_at:%Y-%m-%d %H:%M:%S %Z} by "
        f"{first.command} on {first.host} (ledger run {first.pk}), has not completed yet"
    )
