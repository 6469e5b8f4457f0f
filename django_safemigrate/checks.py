"""System checks: invalid settings, lockfile problems, the older package installed beside this,
a ``DATABASES_CALLABLE`` whose module cannot be found."""

from __future__ import annotations

import contextvars
import functools
import importlib.metadata
import json
import sys
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from django.core.checks import CheckMessage, Error, Warning

from django_safemigrate.conf import DATABASES_CALLABLE_HINT, InvalidSettings, get_settings
from django_safemigrate.exceptions import SafemigrateError

#: The older package's distribution, and this one's: both install the import package
#: ``django_safemigrate``.
OLDER_DISTRIBUTION = "django-safemigrate"
THIS_DISTRIBUTION = "django-pg-safemigrate"


def check_older_package(**kwargs: Any) -> list[CheckMessage]:
    """The older django-safemigrate package installed in the same environment.

    Its files and this app's share one directory, ``django_safemigrate/``: whichever was
    installed last replaced the other's ``__init__.py``, ``apps.py``, ``models.py``,
    ``migrations/0001_initial.py`` and more. When this check runs, this app's ``apps.py``
    won; others of its modules may not have, and uninstalling the older package deletes
    the shared files, so this app must be installed again afterwards.
    """
    older = _older_distribution(tuple(sys.path))
    if older is None:
        return []
    return [
        Error(
            f"The older {OLDER_DISTRIBUTION} package (version {older.version}) is installed "
            f"in this environment beside {THIS_DISTRIBUTION}. Both install the import "
            "package django_safemigrate into the same directory, so the one installed last "
            "has overwritten the other's files, and this app may be running some of the "
            "older package's modules (its models, migrations or commands). Uninstall both, "
            f"since uninstalling {OLDER_DISTRIBUTION} also deletes the files the two share, "
            f"then install {THIS_DISTRIBUTION} again.",
            hint=f"pip uninstall {OLDER_DISTRIBUTION} {THIS_DISTRIBUTION} && "
            f"pip install {THIS_DISTRIBUTION} (and remove {OLDER_DISTRIBUTION} from your "
            "requirements).",
            id="safemigrate.E022",
        )
    ]


@functools.cache
def _older_distribution(path: tuple[str, ...]) -> importlib.metadata.Distribution | None:
    """The older package's installed distribution on the import ``path``, if any: looked up
    once per path (every schema of a fleet run checks again, and what is installed does
    not change under a running process)."""
    found = [
        dist
        for dist in importlib.metadata.distributions(name=OLDER_DISTRIBUTION)
        if _installed(dist) and not _this_checkout(dist)
    ]
    return found[0] if found else None


def _installed(dist: importlib.metadata.Distribution) -> bool:
    # An installer (pip, uv) writes INSTALLER; a bare ``*.egg-info`` directory left in a
    # source tree by a build is found on ``sys.path`` too, but installs nothing.
    return dist.read_text("INSTALLER") is not None


def _this_checkout(dist: importlib.metadata.Distribution) -> bool:
    """An editable install of the very source tree this app runs from, made when this
    project was still published under the older name: stale metadata, no second copy."""
    raw = dist.read_text("direct_url.json")
    try:
        direct = json.loads(raw or "null")
    except ValueError:
        return False
    if not isinstance(direct, dict):
        return False
    dir_info = direct.get("dir_info")
    url = urlparse(str(direct.get("url", "")))
    if not (isinstance(dir_info, dict) and dir_info.get("editable") and url.scheme == "file"):
        return False
    return Path(unquote(url.path)).resolve() == Path(__file__).resolve().parent.parent


def check_settings(**kwargs: Any) -> list[CheckMessage]:
    get_settings.cache_clear()
    try:
        settings = get_settings()
    except InvalidSettings as exc:
        return [Error(p.message, hint=p.hint, id=p.check_id) for p in exc.problems]
    if settings.legacy_mode is not None:
        return [legacy_mode_warning(settings.legacy_mode)]
    if settings.overridden_keys:
        return [overridden_timing_warning(settings.overridden_keys)]
    return []


def overridden_timing_warning(keys: tuple[str, ...]) -> Warning:
    """``LOCK_RETRIES`` next to the older timing keys: say which one decides."""
    names = ", ".join(keys)
    return Warning(
        f"SAFEMIGRATE sets both LOCK_RETRIES and {names}. LOCK_RETRIES decides the lock "
        f"timeouts and retries of strong-lock steps, and {names} "
        f"{'has' if len(keys) == 1 else 'have'} no effect on them (a migration's "
        "safemigrate_timeouts with 'lock_timeout' or 'retries' still reads them).",
        hint=f"Remove {names} to keep the schedule, or remove LOCK_RETRIES to go back to one "
        "lock timeout with exponential backoff.",
        id="safemigrate.W004",
    )


def legacy_mode_warning(mode: str) -> Warning:
    """The older package's mode is a deliberate choice: say what it turns off."""
    disabled = [
        "reviews: destructive migrations are applied by safemigrate without an approval, "
        "and none is recorded",
        "phases inferred from the operations: an unmarked migration runs in either phase",
    ]
    if mode == "disabled":
        disabled += [
            "the phase gate: safemigrate applies every migration, after_deploy ones included, "
            "as migrate does",
            "the check of the safe markers: an invalid one is not refused",
        ]
    return Warning(
        f"SAFEMIGRATE = {mode!r} selects the older django-safemigrate package's mode, which "
        "turns off " + "; ".join(disabled) + ". The lock, the ledger and the check of edited "
        "applied migrations stay on; every run records in the ledger what it did without "
        "governance.",
        hint="To get governance back, replace the string with a dict, for example "
        "SAFEMIGRATE = {'DEFAULT_PHASE': 'pre'} (the markers still declare the phases, and "
        "destructive migrations need a review). To keep this mode deliberately, add "
        "'safemigrate.W003' to SILENCED_SYSTEM_CHECKS.",
        id="safemigrate.W003",
    )


#: Set while ``checkmigrations`` runs the system checks: it reports lockfile problems
#: itself (SM904, SM905), and checksumming every migration twice costs seconds on big
#: projects.
LOCKFILE_REPORTED_BY_COMMAND: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "lockfile_reported_by_command", default=False
)


def check_lockfile(**kwargs: Any) -> list[CheckMessage]:
    """Released migrations edited or deleted since the lockfile was written.

    Warnings, not errors: a developer can still run the project while fixing it;
    ``checkmigrations`` fails CI on the same problems (SM904, SM905).
    """
    from django_safemigrate import lockfile
    from django_safemigrate.analysis.project import lockfile_problems
    from django_safemigrate.plan import load_disk_migrations

    if LOCKFILE_REPORTED_BY_COMMAND.get():
        return []
    try:
        settings = get_settings()
    except InvalidSettings:
        return []  # check_settings reports it
    path = lockfile.default_path(settings.lockfile)
    if not path.exists():
        return []
    try:
        entries = lockfile.read(path)
    except SafemigrateError as exc:
        return [Error(str(exc), id="safemigrate.E012")]
    try:
        loader = load_disk_migrations("The lockfile was not compared with the migrations.")
    except SafemigrateError as exc:
        return [Error(str(exc), id="safemigrate.E023")]
    return [
        Warning(
            problem.message,
            hint=problem.hint,
            obj=f"{problem.app_label}.{problem.name}",
            id="safemigrate.W001" if problem.code == "SM904" else "safemigrate.W002",
        )
        for problem in lockfile_problems(loader, entries, str(path))
    ]


def check_databases_callable(**kwargs: Any) -> list[CheckMessage]:
    """``DATABASES_CALLABLE``'s module can be found, without running it.

    Only ``safemigrate --callable-databases`` may run the project's code behind it, which
    may read a registry of customer databases, so this check looks the module up as the
    import system would, without executing it or its packages' ``__init__``; the function
    is checked only in a module something else imported already. The run reports a
    function that is missing or a module that fails to import.
    """
    try:
        path = get_settings().databases_callable
    except InvalidSettings:
        return []  # check_settings reports it
    if path is None:
        return []
    module, _, name = path.rpartition(".")
    try:
        problem = _unfindable(module)
    except Exception as exc:  # a finder that fails on its own
        text = str(exc).strip()
        problem = f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__
    loaded = sys.modules.get(module)
    if not problem and loaded is not None and not hasattr(loaded, name):
        problem = f"the module {module!r} defines no {name!r}"
    if not problem:
        return []
    return [
        Error(
            f"SAFEMIGRATE['DATABASES_CALLABLE'] is {path!r}, which cannot be imported: "
            f"{problem}. 'safemigrate --callable-databases' would stop before migrating any "
            "database.",
            hint=DATABASES_CALLABLE_HINT,
            id="safemigrate.E038",
        )
    ]


def _unfindable(module: str) -> str:
    """Why the import system would not find ``module`` (``""`` when it would), found
    package by package with the finders of ``sys.meta_path``; unlike
    ``importlib.util.find_spec``, no parent package is imported on the way."""
    parts = module.split(".")
    search: Any = None  # the top level: sys.path
    for depth in range(1, len(parts) + 1):
        name = ".".join(parts[:depth])
        loaded = sys.modules.get(name)
        if loaded is not None:
            locations = getattr(loaded, "__path__", None)
        else:
            spec = next(
                (
                    found
                    for finder in sys.meta_path
                    if hasattr(finder, "find_spec")
                    and (found := finder.find_spec(name, search)) is not None
                ),
                None,
            )
            if spec is None:
                return f"no module {name!r} is on the import path"
            locations = spec.submodule_search_locations
        if depth < len(parts) and locations is None:
            return f"{name!r} is a module, not a package, so it has no module {parts[depth]!r}"
        search = locations
    return ""


def check_tenants(**kwargs: Any) -> list[CheckMessage]:
    """A django-tenants project whose tenant schemas ``migrate_schemas`` would migrate
    ungoverned, or whose every tenant would keep a ledger and reviews of its own."""
    from django.apps import apps
    from django.conf import settings

    if not apps.is_installed("django_tenants"):
        return []
    from django_tenants.utils import get_tenant_base_migrate_command_class

    from django_safemigrate.management.commands import migrate, safemigrate

    problems: list[CheckMessage] = []
    supported = "django_safemigrate.management.commands.safemigrate.Command"
    try:
        command = get_tenant_base_migrate_command_class()
    except ImportError as exc:
        command = None
        named = f"cannot be imported ({exc})"
    else:
        named = f"is {command.__module__}.{command.__qualname__}"
    if command is None or not issubclass(command, migrate.Command):
        problems.append(
            Error(
                "django-tenants is installed, and its migrate_schemas runs the command "
                f"TENANT_BASE_MIGRATE_COMMAND names once per schema; that setting {named}, "
                "so every tenant schema (and the public one) is migrated without the "
                "migration lock, the ledger or the review gate: a destructive migration "
                "reaches every tenant unreviewed, and parallel executors or two deploys at "
                "once run into each other.",
                hint=f"Set TENANT_BASE_MIGRATE_COMMAND = {supported!r}.",
                id="safemigrate.E036",
            )
        )
    elif not issubclass(command, safemigrate.Command):
        problems.append(
            Warning(
                "TENANT_BASE_MIGRATE_COMMAND is this app's migrate: migrate_schemas takes "
                "the migration lock and keeps the ledger for each schema, but reviews and "
                "the phase gate are off (as for plain migrate).",
                hint=f"Set TENANT_BASE_MIGRATE_COMMAND = {supported!r} for the gate.",
                id="safemigrate.W005",
            )
        )
    tenant_apps = getattr(settings, "TENANT_APPS", ())
    if "django_safemigrate" in tenant_apps or any(
        str(app).startswith("django_safemigrate.") for app in tenant_apps
    ):
        problems.append(
            Error(
                "django_safemigrate is in TENANT_APPS: every tenant schema would get a ledger "
                "and review tables of its own, so a destructive migration would need one "
                "approval per tenant and no one place would say which tenant ran what.",
                hint="List django_safemigrate in SHARED_APPS only: its tables in the public "
                "schema serve every tenant, and its records carry each run's schema.",
                id="safemigrate.E037",
            )
        )
    return problems
