"""Settings for the labelled migration corpus (``bench/corpus``).

Run from this directory (``cd bench/corpus && python manage.py ...``) so the corpus apps are
importable as top-level packages. The database is ``DATABASE_URL`` (required: the corpus is only
ever judged or migrated on a database the caller chose, usually a freshly created one). The
benchmark tools compared by ``bench/accuracy.py`` are installed as apps when they are importable,
so the corpus also loads in an environment without them (the label tests).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent

SECRET_KEY = "safemigrate-corpus-only"
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

CORPUS_APPS = [
    "corpus_accounts",
    "corpus_shop",
    "corpus_billing",
    "corpus_support",
    "corpus_inventory",
]

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django_safemigrate",
    *CORPUS_APPS,
]
for _tool in ("django_migration_linter", "django_safe_migrations"):
    if importlib.util.find_spec(_tool) is not None:
        INSTALLED_APPS.append(_tool)

DATABASES = {"default": dj_database_url.parse(os.environ["DATABASE_URL"], conn_max_age=0)}
