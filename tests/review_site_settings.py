"""A site with the Django admin on a scenario database, for reviewers (the browser test).

Everything of ``tests.scenario_settings`` (``DATABASE_URL``, ``SCENARIO_APPS``,
``SAFEMIGRATE_JSON``), plus what the admin needs: sessions, messages, templates,
middleware and URLs. Static files are served by ``runserver --insecure``.
"""

from __future__ import annotations

from tests.scenario_settings import *  # noqa: F403
from tests.scenario_settings import INSTALLED_APPS as SCENARIO_INSTALLED_APPS

DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    *SCENARIO_INSTALLED_APPS,
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
ROOT_URLCONF = "tests.review_site_urls"
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
TIME_ZONE = "UTC"
