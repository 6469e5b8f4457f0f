"""System checks: invalid settings fail ``manage.py check`` and every command, not a deploy."""

from __future__ import annotations

from typing import Any

from django.core.checks import CheckMessage, Error

from django_safemigrate.conf import InvalidSettings, get_settings


def check_settings(**kwargs: Any) -> list[CheckMessage]:
    get_settings.cache_clear()
    try:
        get_settings()
    except InvalidSettings as exc:
        return [Error(p.message, hint=p.hint, id=p.check_id) for p in exc.problems]
    return []
