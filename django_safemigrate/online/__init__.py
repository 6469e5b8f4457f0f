"""Online execution: risky statements on existing tables run in their online forms.

:mod:`.rewrite` turns the statements a migration renders into online forms
(:mod:`.forms`); :mod:`.typechange` holds the expand / backfill / switch form of a
column type change that rewrites the table. ``SAFEMIGRATE['ONLINE']`` (default ``True``)
and a migration's ``safemigrate_online = False`` decide whether a migration uses them.
"""

from __future__ import annotations

from typing import Any

from django.db.migrations import Migration

from django_safemigrate.exceptions import UsageError

#: Attribute of a Migration class that turns online execution off (or on) for it.
ONLINE_ATTRIBUTE = "safemigrate_online"


def online_for(settings: Any, migration: Migration) -> bool:
    """Whether ``migration`` runs in online forms: its own attribute, else the setting.

    Raises :class:`UsageError` naming the migration for a value that is not a bool
    (commands check every migration before anything is applied).
    """
    value = getattr(migration, ONLINE_ATTRIBUTE, None)
    if value is None:
        return bool(settings.online)
    if not isinstance(value, bool):
        raise UsageError(
            f"Migration {migration.app_label}.{migration.name} sets {ONLINE_ATTRIBUTE} to "
            f"{value!r}, but it must be True or False. Fix it in the migration file. "
            "Nothing was applied."
        )
    return value
