"""The real-history project without django_safemigrate: ``migrate`` is Django's own.

The reference the governed run is compared with: the same apps and the same
migration files, applied by Django's core ``migrate`` command.
"""

from __future__ import annotations

from tests.realhistory_settings import *  # noqa: F403
from tests.realhistory_settings import INSTALLED_APPS as _GOVERNED_APPS

INSTALLED_APPS = [app for app in _GOVERNED_APPS if app != "django_safemigrate"]
