from __future__ import annotations

from django.apps import AppConfig
from django.core import checks
from django.core.signals import setting_changed
from django.utils.translation import gettext_lazy as _


class SafemigrateConfig(AppConfig):
    name = "django_safemigrate"
    verbose_name = _("Migration governance")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django_safemigrate.checks import (
            check_databases_callable,
            check_lockfile,
            check_older_package,
            check_settings,
            check_tenants,
        )
        from django_safemigrate.conf import clear_cache

        checks.register(check_older_package)
        checks.register(check_settings)
        checks.register(check_lockfile)
        checks.register(check_tenants)
        checks.register(check_databases_callable)
        setting_changed.connect(clear_cache, dispatch_uid="django_safemigrate.conf")


class SafeMigrateConfig(SafemigrateConfig):
    """The same app under the older django-safemigrate package's ``INSTALLED_APPS`` entry.

    A project that lists ``"django_safemigrate.apps.SafeMigrateConfig"`` keeps its
    settings when it switches.

    ``default = False``: Django takes the one ``AppConfig`` of ``apps.py`` for a plain
    ``"django_safemigrate"`` entry, or the one marked default when there are several, so
    this alias must not compete with :class:`SafemigrateConfig`.
    """

    default = False
