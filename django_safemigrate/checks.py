"""System checks: invalid settings and lockfile problems show in ``manage.py check``."""

from __future__ import annotations

import contextvars
from typing import Any

from django.core.checks import CheckMessage, Error, Warning

from django_safemigrate.conf import InvalidSettings, get_settings
from django_safemigrate.exceptions import SafemigrateError


def check_settings(**kwargs: Any) -> list[CheckMessage]:
    get_settings.cache_clear()
    try:
        get_settings()
    except InvalidSettings as exc:
        return [Error(p.message, hint=p.hint, id=p.check_id) for p in exc.problems]
    return []


#: Set while ``checkmigrations`` runs the system checks: it reports lockfile problems
#: itself (SM904, SM905), and checksumming every migration twice costs seconds on big
#: projects.
LOCKFILE_REPORTED_BY_COMMAND: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "lockfile_reported_by_command", default=False
)


def check_lockfile(**kwargs: Any) -> list[CheckMessage]:
    """Released migrations edited or deleted since the lockfile was written.

    Warnings, not errors: a developer can still run the project while fixing it;
    ``checkmigrations`` fails CI on the same problems (SM904, SM905).
    """
    from django_safemigrate import lockfile
    from django_safemigrate.analysis.project import lockfile_problems
    from django_safemigrate.plan import load_disk_migrations

    if LOCKFILE_REPORTED_BY_COMMAND.get():
        return []
    try:
        settings = get_settings()
    except InvalidSettings:
        return []  # check_settings reports it
    path = lockfile.default_path(settings.lockfile)
    if not path.exists():
        return []
    try:
        entries = lockfile.read(path)
        loader = load_disk_migrations()
    except SafemigrateError as exc:
        return [Error(str(exc), id="safemigrate.E012")]
    hint = "Restore the released version and put the change in a new migration."
    return [
        Warning(
            problem.message,
            hint=hint,
            obj=f"{problem.app_label}.{problem.name}",
            id="safemigrate.W001" if problem.code == "SM904" else "safemigrate.W002",
        )
        for problem in lockfile_problems(loader, entries, str(path))
    ]
