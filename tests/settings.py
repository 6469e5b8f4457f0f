"""Django settings for this app's test suite.

The database is a real PostgreSQL chosen by ``test_database_url()``: ``DATABASE_URL`` if set,
else a throwaway container (Docker) or embedded server. It is resolved once, when the test
runner imports these settings, and exported as ``DATABASE_URL`` so the ``manage.py``
subprocesses that tests start reach the same server.
"""

from __future__ import annotations

import os

import dj_database_url

from django_safemigrate.testing.postgres import test_database_url

SECRET_KEY = "django-safemigrate-tests-only"
DEBUG = False
ALLOWED_HOSTS = ["localhost", "127.0.0.1", "testserver"]

DATABASES = {"default": dj_database_url.parse(test_database_url())}
# The server may be shared (a developer's, or a machine where several test runs happen at
# once): a per-run name keeps concurrent sessions from dropping each other's test database.
DATABASES["default"]["TEST"] = {"NAME": f"test_safemigrate_{os.getpid()}"}

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "django_safemigrate",
    "example_site.shop",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "example_site.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

STATIC_URL = "static/"
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
