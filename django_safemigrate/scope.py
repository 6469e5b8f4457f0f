"""Whose migrations they are: the project's own, or an installed package's.

By default only the project's own migrations fail ``checkmigrations`` and need reviews;
those of installed packages (Django's contrib apps, third-party apps, this package) are
analysed and shown. A team does not review Django's history, and cannot change it.

A migration belongs to an installed package when the file that defines it lies in an
installation directory (``site-packages``, ``dist-packages``, the interpreter's own library)
or is this package's own; everything else is the project's, wherever it lives, including
packages installed in editable mode from a checkout and migrations that
``MIGRATION_MODULES`` moves into the project. ``SAFEMIGRATE["GOVERN_PACKAGES"]`` brings
packages back into scope: ``True`` for all of them, or a list of app labels.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.metadata
import os
import sys
import sysconfig
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from django_safemigrate.analysis.findings import MigrationReport, Problem
    from django_safemigrate.conf import SafemigrateSettings

APP_PACKAGE = "django_safemigrate"

#: Directory names that only installers create.
_INSTALL_DIRS = frozenset({"site-packages", "dist-packages"})


def package_of(migration: Any) -> str | None:
    """The installed package ``migration`` comes with (``"Django 5.2.8"``), or ``None`` when
    it is the project's own."""
    return module_package(type(migration).__module__)


@functools.cache
def module_package(module_name: str) -> str | None:
    top = module_name.partition(".")[0]
    if top != APP_PACKAGE:
        module = sys.modules.get(module_name)
        path = getattr(module, "__file__", None)
        if not path or not _installed(path):
            return None
    return _distribution(top)


def _installed(path: str) -> bool:
    real = os.path.realpath(path)
    if _INSTALL_DIRS.intersection(real.split(os.sep)):
        return True
    stdlib = sysconfig.get_paths().get("stdlib")
    return stdlib is not None and real.startswith(os.path.realpath(stdlib) + os.sep)


def _distribution(top: str) -> str:
    """``"name version"`` of the distribution that provides the top-level package ``top``."""
    names = importlib.metadata.packages_distributions().get(top, [])
    for name in names:
        try:
            return f"{name} {importlib.metadata.version(name)}"
        except importlib.metadata.PackageNotFoundError:  # pragma: no cover - a broken install
            continue
    return top


def governed(app_label: str, package: str | None, settings: SafemigrateSettings) -> bool:
    """Whether a migration of ``app_label`` (coming with ``package``) fails checks and needs
    reviews under ``settings``."""
    if package is None:
        return True
    choice = settings.govern_packages
    return choice is True or (not isinstance(choice, bool) and app_label in choice)


def out_of_scope(app_label: str, package: str | None, settings: SafemigrateSettings) -> str | None:
    """The package a migration of ``app_label`` is not governed for, if it is not."""
    return None if governed(app_label, package, settings) else package


def scoped(
    reports: Iterable[MigrationReport], settings: SafemigrateSettings
) -> list[MigrationReport]:
    """``reports``, each marked governed or not under ``settings``."""
    return [
        dataclasses.replace(r, governed=governed(r.app_label, r.package, settings)) for r in reports
    ]


def app_package(loader: Any, app_label: str) -> str | None:
    """The installed package an app comes with: that of its migrations, or of its module
    when it has none."""
    for (label, _), migration in loader.disk_migrations.items():
        if label == app_label:
            return package_of(migration)
    from django.apps import apps

    try:
        config = apps.get_app_config(app_label)
    except LookupError:
        return None
    return module_package(config.module.__name__) if config.module else None


def scoped_problems(
    problems: Iterable[Problem], loader: Any, settings: SafemigrateSettings
) -> list[Problem]:
    """``problems``, those about a package the settings leave out of scope marked with it."""
    marked = []
    for problem in problems:
        package = app_package(loader, problem.app_label) if problem.app_label else None
        if problem.app_label and not governed(problem.app_label, package, settings):
            marked.append(dataclasses.replace(problem, package=package))
        else:
            marked.append(problem)
    return marked
