"""A schema-per-tenant project (django-tenants) set up as the README says.

``DATABASE_URL`` names the database; ``SHOP_MIGRATIONS=next`` gives the tenant app
``shop`` its next release (a destructive migration), ``bench`` the benchmark's (one new
nullable column); ``SILENCED_SYSTEM_CHECKS`` (comma-separated); ``TENANT_BASE_MIGRATE_COMMAND``
(``django`` for Django's own ``migrate``) and ``SAFEMIGRATE_JSON`` override those
settings; ``SAFEMIGRATE_IN_TENANT_APPS`` lists this app in ``TENANT_APPS`` too;
``TENANT_MULTIPROCESSING_MAX_PROCESSES`` sets the pool of the ``multiprocessing``
executor.
"""

from __future__ import annotations

import json
import os

import dj_database_url

SECRET_KEY = "tenant-tests-only"
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

DATABASES = {"default": dj_database_url.parse(os.environ["DATABASE_URL"])}
DATABASES["default"]["ENGINE"] = "django_tenants.postgresql_backend"
if os.environ.get("ORIGINAL_BACKEND"):
    ORIGINAL_BACKEND = os.environ["ORIGINAL_BACKEND"]
DATABASE_ROUTERS = ("django_tenants.routers.TenantSyncRouter",)

SHARED_APPS = [
    "django_tenants",
    "tests.tenants_site.customers",
    "django.contrib.contenttypes",
    "django.contrib.auth",
    # Shared only: one ledger and one set of reviews for the whole fleet.
    "django_safemigrate",
]
TENANT_APPS = [
    "django.contrib.contenttypes",
    "tests.tenants_site.shop",
    # A mistake the system checks catch (safemigrate.E037).
    *(["django_safemigrate"] if os.environ.get("SAFEMIGRATE_IN_TENANT_APPS") else []),
]
INSTALLED_APPS = [*SHARED_APPS, *(app for app in TENANT_APPS if app not in SHARED_APPS)]

TENANT_MODEL = "customers.Client"
TENANT_DOMAIN_MODEL = "customers.Domain"
# migrate_schemas runs this command once per schema: governed.
TENANT_BASE_MIGRATE_COMMAND = "django_safemigrate.management.commands.safemigrate.Command"
if os.environ.get("TENANT_BASE_MIGRATE_COMMAND") == "django":
    del TENANT_BASE_MIGRATE_COMMAND
elif os.environ.get("TENANT_BASE_MIGRATE_COMMAND"):
    TENANT_BASE_MIGRATE_COMMAND = os.environ["TENANT_BASE_MIGRATE_COMMAND"]
TENANT_MULTIPROCESSING_MAX_PROCESSES = int(
    os.environ.get("TENANT_MULTIPROCESSING_MAX_PROCESSES") or 2
)
TENANT_MULTIPROCESSING_CHUNKS = 1
# django-tenants' own switch: set the search_path once per connection, not per cursor.
TENANT_LIMIT_SET_CALLS = os.environ.get("TENANT_LIMIT_SET_CALLS") == "1"

if os.environ.get("SHOP_MIGRATIONS") in {"next", "bench"}:
    MIGRATION_MODULES = {
        "shop": f"tests.tenants_site.shop.migrations_{os.environ['SHOP_MIGRATIONS']}"
    }
# The plain django-tenants project of the benchmark (bench/tenants.py) runs Django's
# migrate per schema on purpose.
SILENCED_SYSTEM_CHECKS = [c for c in os.environ.get("SILENCED_SYSTEM_CHECKS", "").split(",") if c]

SAFEMIGRATE = json.loads(os.environ.get("SAFEMIGRATE_JSON") or "{}")
