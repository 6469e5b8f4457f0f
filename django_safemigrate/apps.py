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
        from django_safemigrate.checks import check_lockfile, check_settings
        from django_safemigrate.conf import clear_cache

        checks.register(check_settings)
        checks.register(check_lockfile)
        setting_changed.connect(clear_cache, dispatch_uid="django_safemigrate.conf")
