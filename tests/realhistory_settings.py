"""Settings of the real-history project: long migration histories installed from PyPI.

The apps below are real third-party packages (the ``test`` extra installs them) whose
migration histories are years long: Wagtail (with django-taggit and modelsearch),
django CMS, django-allauth, django-oauth-toolkit, django-otp, django-reversion and
django-filer (with easy-thumbnails), on
top of ``django.contrib``. Together they hold several hundred migrations with every
kind of operation a real project meets (``RenameModel``, ``RenameField``,
``RunPython``, ``RunSQL``, ``AlterField``, ``RemoveField``, unique and index changes,
swappable dependencies). ``tests/test_real_histories.py`` runs the commands against
them in ``manage.py`` subprocesses; ``DATABASE_URL`` names the database.

Only what loading the apps and their migrations needs is configured: no URLs are
served and no templates are rendered.
"""

from __future__ import annotations

import os

import dj_database_url

SECRET_KEY = "real-history-tests-only"
USE_TZ = True
TIME_ZONE = "UTC"
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English")]
SITE_ID = 1
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
DATABASES = {"default": dj_database_url.parse(os.environ["DATABASE_URL"])}

INSTALLED_APPS = [
    # django.contrib, with the apps that have migrations of their own.
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.sites",
    "django.contrib.redirects",
    "django.contrib.flatpages",
    "django.contrib.postgres",
    "django_safemigrate",
    # Wagtail and what it brings.
    "wagtail.contrib.forms",
    "wagtail.contrib.redirects",
    "wagtail.contrib.search_promotions",
    "wagtail.contrib.settings",
    "wagtail.contrib.simple_translation",
    "wagtail.embeds",
    "wagtail.sites",
    "wagtail.users",
    "wagtail.snippets",
    "wagtail.documents",
    "wagtail.images",
    "wagtail.search",
    "wagtail.locales",
    "wagtail.admin",
    "wagtail",
    "modelcluster",
    "taggit",
    # django CMS.
    "cms",
    "menus",
    "treebeard",
    "sekizai",
    # django-allauth.
    "allauth",
    "allauth.account",
    "allauth.socialaccount",
    "allauth.mfa",
    "allauth.usersessions",
    # django-oauth-toolkit.
    "oauth2_provider",
    # django-otp and its device plugins.
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_hotp",
    "django_otp.plugins.otp_static",
    "django_otp.plugins.otp_email",
    # django-reversion.
    "reversion",
    # django-filer and its thumbnailer.
    "easy_thumbnails",
    "filer",
]

MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "allauth.account.middleware.AccountMiddleware",
]

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
                "sekizai.context_processors.sekizai",
                "cms.context_processors.cms_settings",
            ],
        },
    },
]

STATIC_URL = "static/"
WAGTAIL_SITE_NAME = "Real histories"
WAGTAILADMIN_BASE_URL = "http://localhost"
CMS_TEMPLATES = [("base.html", "Base")]
# django CMS's page manager predates treebeard's newest manager check; it only warns,
# and the warning would bury the commands' own output.
SILENCED_SYSTEM_CHECKS = ["treebeard.E001"]
