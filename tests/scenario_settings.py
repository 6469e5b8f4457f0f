"""Settings for ``manage.py`` subprocesses that tests start against a scenario.

``DATABASE_URL`` names the database; ``SCENARIO_APPS`` (comma-separated module
paths, importable through ``PYTHONPATH``) are installed after this app;
``SAFEMIGRATE_JSON`` (JSON) or ``SAFEMIGRATE_STRING`` become ``SAFEMIGRATE``;
``DATABASE_SEARCH_PATH`` sets the connection's ``search_path`` (a tenant schema);
``DIRECT_DATABASE_URL`` adds a ``direct`` alias (a connection that bypasses a pooler);
``EXTRA_DATABASE_URLS`` (JSON ``{alias: url}``) adds more aliases, in that order;
``NO_MIGRATE_ALIASES`` (comma-separated) names aliases whose router allows no migrations;
``SCENARIO_EVENTS_FILE`` receives the structured events as JSON lines;
``SCENARIO_AUTH_USER_MODEL`` swaps the user model (``AUTH_USER_MODEL``);
``SHARED_APPS`` (comma-separated app labels) are migrated only in the ``public`` schema,
as a schema-per-tenant router does: with ``DATABASE_SEARCH_PATH=tenant,public`` their
tables are the shared ones in ``public``.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import dj_database_url

SECRET_KEY = "scenario-tests-only"
# Where the default lockfile lives (tests that use it point this at their tmp dir).
BASE_DIR = Path(os.environ.get("SCENARIO_BASE_DIR") or tempfile.gettempdir())
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
DATABASES = {"default": dj_database_url.parse(os.environ["DATABASE_URL"])}
if os.environ.get("DATABASE_ENGINE"):
    DATABASES["default"]["ENGINE"] = os.environ["DATABASE_ENGINE"]
if os.environ.get("DATABASE_SEARCH_PATH"):
    # One schema of a schema-per-tenant database.
    DATABASES["default"]["OPTIONS"] = {
        "options": f"-c search_path={os.environ['DATABASE_SEARCH_PATH']}"
    }
if os.environ.get("DIRECT_DATABASE_URL"):
    # A second alias to the same database, bypassing a pooler (for --lock-database).
    DATABASES["direct"] = dj_database_url.parse(os.environ["DIRECT_DATABASE_URL"])
for alias, url in json.loads(os.environ.get("EXTRA_DATABASE_URLS") or "{}").items():
    DATABASES[alias] = dj_database_url.parse(url)
DATABASE_ROUTERS = [
    *(["tests.scenario_settings.NoMigrations"] if os.environ.get("NO_MIGRATE_ALIASES") else []),
    *(["tests.scenario_settings.SharedApps"] if os.environ.get("SHARED_APPS") else []),
]


class NoMigrations:
    """A router that allows no migrations on the aliases in ``NO_MIGRATE_ALIASES``."""

    def allow_migrate(self, db: str, app_label: str, **hints: object) -> bool | None:
        return False if db in os.environ.get("NO_MIGRATE_ALIASES", "").split(",") else None


class SharedApps:
    """Migrates the apps in ``SHARED_APPS`` in the ``public`` schema only."""

    def allow_migrate(self, db: str, app_label: str, **hints: object) -> bool | None:
        schema = (os.environ.get("DATABASE_SEARCH_PATH") or "public").split(",")[0].strip()
        if app_label in os.environ["SHARED_APPS"].split(","):
            return schema == "public"
        return None


INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django_safemigrate",
    *[app for app in os.environ.get("SCENARIO_APPS", "").split(",") if app],
]
if os.environ.get("SCENARIO_AUTH_USER_MODEL"):
    AUTH_USER_MODEL = os.environ["SCENARIO_AUTH_USER_MODEL"]
if "SAFEMIGRATE_JSON" in os.environ:
    SAFEMIGRATE = json.loads(os.environ["SAFEMIGRATE_JSON"])
elif "SAFEMIGRATE_STRING" in os.environ:
    SAFEMIGRATE = os.environ["SAFEMIGRATE_STRING"]
if os.environ.get("SCENARIO_EVENTS_FILE"):
    # The run's structured events, one JSON object a line, as a log collector reads them.
    LOGGING = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "django_safemigrate.logging.JSONFormatter"}},
        "handlers": {
            "events": {
                "class": "logging.FileHandler",
                "filename": os.environ["SCENARIO_EVENTS_FILE"],
                "formatter": "json",
            }
        },
        "loggers": {
            "django_safemigrate.events": {"handlers": ["events"], "level": "INFO"},
        },
    }
