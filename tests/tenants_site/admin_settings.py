"""The schema-per-tenant project of ``settings`` with the admin, served as django-tenants
serves a site: its middleware picks the schema from the request's host, the public
schema's domain serves ``urls`` (the admin).

``settings`` itself has no admin (its tests run commands only); the env switches it reads
work here the same. The admin's and sessions' migrations are shared apps' migrations, so
a fleet is built and deployed with these settings for its states to match the page's.
"""

from __future__ import annotations

from tests.tenants_site.settings import *  # noqa: F403
from tests.tenants_site.settings import SHARED_APPS, TENANT_APPS

SHARED_APPS = [
    *SHARED_APPS,
    "django.contrib.admin",
    "django.contrib.sessions",
    "django.contrib.messages",
]
INSTALLED_APPS = [*SHARED_APPS, *(app for app in TENANT_APPS if app not in SHARED_APPS)]

MIDDLEWARE = [
    # First, as django-tenants asks: the schema of the request's host.
    "django_tenants.middleware.main.TenantMainMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
ROOT_URLCONF = "tests.tenants_site.urls"
PUBLIC_SCHEMA_URLCONF = "tests.tenants_site.urls"
ALLOWED_HOSTS = ["testserver"]
# Views run in a transaction, as many projects have them: a page that reads a missing
# table must not break it.
DATABASES["default"]["ATOMIC_REQUESTS"] = True  # noqa: F405

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
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
