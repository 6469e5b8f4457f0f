"""Several databases in one ``safemigrate`` run: which ones, how each ended, the whole.

Each database is still governed on its own (its lock, its ledger, its gate, its exit
code): this module only chooses the databases (aliases of ``DATABASES``, or what the
project's ``DATABASES_CALLABLE`` returns), names how each run ended and folds the
per-database exit codes into one. It never touches a connection.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from django_safemigrate.enums import DatabaseOutcome, ExitCode
from django_safemigrate.exceptions import (
    DatabaseUnavailable,
    LockLost,
    LockTimeout,
    UsageError,
)

#: Per-database exit codes, most severe first; the whole run exits with the first of
#: these that any database ended with. A failed migration left a database part-way
#: through its plan; a lock not taken or lost means a run did not finish; a usage error
#: (an unreachable database among them) means one was not governed at all; blocked means
#: nothing was applied there, by design, until someone reviews.
SEVERITY: tuple[ExitCode, ...] = (
    ExitCode.FAILED,
    ExitCode.LOCK_TIMEOUT,
    ExitCode.USAGE,
    ExitCode.BLOCKED,
    ExitCode.OK,
)

#: Version of the ``--report-json`` layout; keys may be added, never renamed or removed.
REPORT_SCHEMA_VERSION = 1


@dataclasses.dataclass
class DatabaseResult:
    """How one database's run ended."""

    alias: str
    outcome: DatabaseOutcome
    #: ``None`` for a database that was not run (``--fail-fast``).
    exit_code: int | None = None
    applied: list[str] = dataclasses.field(default_factory=list)
    unapplied: list[str] = dataclasses.field(default_factory=list)
    error: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "alias": self.alias,
            "outcome": self.outcome.value,
            "exit_code": self.exit_code,
            "applied": list(self.applied),
            "unapplied": list(self.unapplied),
            "error": self.error,
        }


def choose_aliases(
    given: Sequence[str] | None, all_databases: bool, known: Sequence[str]
) -> list[str]:
    """The aliases named on the command line, checked; :class:`UsageError` when they
    cannot be used together. ``--all-databases`` is resolved by the caller."""
    if all_databases and given:
        raise UsageError(
            "--all-databases runs every database in DATABASES whose router allows migrations; "
            f"it cannot be combined with --database ({', '.join(given)}). Give one or the "
            "other. Nothing was read or changed."
        )
    aliases = list(given or ())
    repeated = sorted({alias for alias in aliases if aliases.count(alias) > 1})
    if repeated:
        raise UsageError(
            f"--database {', '.join(repeated)} was given more than once: each database is "
            "migrated once per run. Name each alias once. Nothing was read or changed."
        )
    unknown = [alias for alias in aliases if alias not in known]
    if unknown:
        raise UsageError(
            f"There is no database {', '.join(repr(a) for a in unknown)} in DATABASES (it has "
            f"{', '.join(repr(a) for a in known) or 'none'}). Nothing was read or changed."
        )
    return aliases


#: A database from ``DATABASES_CALLABLE`` runs under this prefix and its name, a connection
#: alias that no entry of ``DATABASES`` has (routers, signals and the ledger see it).
TRANSIENT_PREFIX = "safemigrate:"
#: The ledger keeps a run's alias in 100 characters (``Run.database``), prefix included.
MAX_NAME_LENGTH = 100 - len(TRANSIENT_PREFIX)
#: Problems of a ``DATABASES_CALLABLE`` result named in its error; the rest are counted.
SHOWN_PROBLEMS = 3


def transient_alias(name: str) -> str:
    """The connection alias the database ``name`` of ``DATABASES_CALLABLE`` runs under."""
    return f"{TRANSIENT_PREFIX}{name}"


def callable_databases(path: str, known: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Import ``DATABASES_CALLABLE`` (``path``), call it once and check everything it
    returned before any database is touched: transient alias → settings, in its order.

    :class:`UsageError` (exit 2, one paragraph) when it cannot be imported, is not
    callable, raises (its exception's first line), or returns anything but a non-empty
    list of ``(name, settings)`` pairs with distinct names, each settings a PostgreSQL
    ``DATABASES`` entry with an ``ENGINE`` and a ``NAME``.
    """
    from django.utils.module_loading import import_string

    setting = f"SAFEMIGRATE['DATABASES_CALLABLE'] ({path!r})"
    fix = (
        "It must return (name, settings) pairs, each settings a DATABASES entry of a "
        "PostgreSQL database (a dict with ENGINE, NAME, HOST, ...). Nothing was read or "
        "changed."
    )
    try:
        function = import_string(path)
    except Exception as exc:  # ImportError, or whatever the module raises on import
        raise UsageError(
            f"SAFEMIGRATE['DATABASES_CALLABLE'] is {path!r}, which cannot be imported: "
            f"{_first_line(exc)}. Point it at a function of your project that takes no "
            f"arguments. {fix}"
        ) from exc
    if not callable(function):
        raise UsageError(
            f"SAFEMIGRATE['DATABASES_CALLABLE'] is {path!r}, which is {_a(function)}, not a "
            f"function. {fix}"
        )
    try:
        returned = function()
        # A generator runs the project's code as it is consumed: its errors are the
        # callable's too.
        entries = list(returned) if _many(returned) else None
    except Exception as exc:
        raise UsageError(
            f"{setting} raised {_first_line(exc)}. No database was migrated; fix the cause "
            "and deploy again. Nothing was read or changed."
        ) from exc
    if entries is None:
        hint = (
            "; for a dict of names to settings, return its .items()"
            if isinstance(returned, Mapping)
            else ""
        )
        raise UsageError(
            f"{setting} returned {_a(returned)}, not an iterable of (name, settings) "
            f"pairs{hint}. {fix}"
        )
    if not entries:
        raise UsageError(
            f"{setting} returned no database. A deploy that migrates nothing is taken for "
            "a mistake (a registry that could not be read, a filter too narrow), not for "
            "success: check what it returns, or leave out --callable-databases. Nothing was "
            "read or changed."
        )
    databases: dict[str, dict[str, Any]] = {}
    problems: list[str] = []
    for index, entry in enumerate(entries, 1):
        problem, name, settings = _check_entry(index, entry)
        if problem is None and transient_alias(name) in known:
            problem = (
                f"entry {index}, {name!r}, would run under the alias "
                f"{transient_alias(name)!r}, which DATABASES already has"
            )
        if problem is None and transient_alias(name) in databases:
            problem = (
                f"the name {name!r} is given more than once (entry {index} again): each "
                "database is migrated once per run, under a name of its own"
            )
        if problem is not None:
            problems.append(problem)
            continue
        databases[transient_alias(name)] = settings
    if problems:
        more = len(problems) - SHOWN_PROBLEMS
        listed = "; ".join(problems[:SHOWN_PROBLEMS])
        if more > 0:
            listed += f"; and {more} more problem{'s' if more > 1 else ''}"
        raise UsageError(
            f"{setting} returned {len(entries)} entr{'ies' if len(entries) > 1 else 'y'} that "
            f"cannot all be migrated: {listed}. No database is migrated until all of them "
            f"can be. {fix}"
        )
    return databases


def _check_entry(index: int, entry: Any) -> tuple[str | None, str, dict[str, Any]]:
    """One ``(name, settings)`` pair: the problem with it, or ``None`` and its parts.

    Messages never show a settings value but the ENGINE: it holds the password."""
    from django.db.utils import load_backend

    if not (isinstance(entry, tuple | list) and len(entry) == 2):
        return f"entry {index} is {_a(entry)}, not a (name, settings) pair", "", {}
    name, settings = entry
    if not isinstance(name, str):
        return f"entry {index}'s name is {_a(name)}, not a str", "", {}
    if not name or not name.isprintable() or name != name.strip():
        return (
            f"entry {index}'s name is {name!r}: a name must be non-empty and printable, with "
            "no space at either end",
            "",
            {},
        )
    if len(name) > MAX_NAME_LENGTH:
        return (
            f"entry {index}'s name is {len(name)} characters long, more than "
            f"{MAX_NAME_LENGTH} (the ledger keeps {TRANSIENT_PREFIX!r} and the name in 100)",
            "",
            {},
        )
    if not isinstance(settings, Mapping):
        url = (
            " (a URL? dj_database_url.parse() makes the dict)" if isinstance(settings, str) else ""
        )
        return f"the settings of {name!r} are {_a(settings)}{url}, not a dict", "", {}
    missing = [key for key in ("ENGINE", "NAME") if not settings.get(key)]
    if missing:
        return f"the settings of {name!r} have no {' and no '.join(missing)}", "", {}
    engine = settings["ENGINE"]
    try:
        vendor = load_backend(engine).DatabaseWrapper.vendor if isinstance(engine, str) else None
    except Exception as exc:  # ImproperlyConfigured, or what the backend raises on import
        # Django's ImproperlyConfigured lists its own backends; the import error says why.
        return (
            f"the ENGINE of {name!r}, {engine!r}, cannot be loaded: "
            f"{_first_line(exc.__cause__ or exc)}",
            "",
            {},
        )
    if vendor != "postgresql":
        what = f"({vendor})" if vendor else f"({_a(engine)})"
        return (
            f"the ENGINE of {name!r} is {engine!r} {what}, not PostgreSQL's: "
            "django_safemigrate works with PostgreSQL only",
            "",
            {},
        )
    # A copy: Django fills in the defaults of an entry in place.
    copied = {
        **settings,
        "OPTIONS": dict(settings.get("OPTIONS") or {}),
        "TEST": dict(settings.get("TEST") or {}),
    }
    return None, name, copied


def _many(value: object) -> bool:
    """An iterable of entries: not a string, nor a mapping (its keys would be taken)."""
    return isinstance(value, Iterable) and not isinstance(value, str | bytes | Mapping)


def _a(value: object) -> str:
    """What ``value`` is, without showing it (a URL or a dict may hold a password)."""
    if value is None:
        return "None"
    kind = type(value).__name__
    if isinstance(value, tuple | list):
        return f"a {kind} of {len(value)} item{'' if len(value) == 1 else 's'}"
    return f"{'an' if kind[:1].lower() in 'aeiou' else 'a'} {kind}"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__


def outcome_of(exc: BaseException | None, code: int) -> DatabaseOutcome:
    """The outcome of a database's run that raised ``exc`` (the domain error behind the
    command's error, when there is one) and exited ``code``."""
    if isinstance(exc, DatabaseUnavailable):
        return DatabaseOutcome.UNREACHABLE
    if isinstance(exc, LockLost):
        return DatabaseOutcome.INTERRUPTED
    if isinstance(exc, LockTimeout) or code == ExitCode.LOCK_TIMEOUT:
        return DatabaseOutcome.LOCK_TIMEOUT
    if code == ExitCode.BLOCKED:
        return DatabaseOutcome.BLOCKED
    if code == ExitCode.USAGE or isinstance(exc, UsageError):
        return DatabaseOutcome.USAGE_ERROR
    return DatabaseOutcome.FAILED


def succeeded_outcome(
    applied: Sequence[str], unapplied: Sequence[str], planned: bool
) -> DatabaseOutcome:
    if planned:
        return DatabaseOutcome.PLANNED
    if applied:
        return DatabaseOutcome.APPLIED
    if unapplied:
        return DatabaseOutcome.UNAPPLIED
    return DatabaseOutcome.NOTHING_TO_DO


def overall_exit_code(results: Iterable[DatabaseResult]) -> ExitCode:
    """The most severe per-database exit code (:data:`SEVERITY`); 0 when all succeeded."""
    codes = {r.exit_code for r in results if r.exit_code is not None}
    for code in SEVERITY:
        if code in codes:
            return code
    return ExitCode.OK


def summary(results: Sequence[DatabaseResult]) -> str:
    """``3 databases: applied 2, blocked 1 (reports: Blocked by governance: …)``."""
    counts: dict[DatabaseOutcome, list[DatabaseResult]] = {}
    for result in results:
        counts.setdefault(result.outcome, []).append(result)
    parts = []
    for outcome, group in counts.items():
        part = f"{outcome.value.replace('_', ' ')} {len(group)}"
        if outcome not in SUCCESS:
            part += " (" + "; ".join(_why(r) for r in group) + ")"
        parts.append(part)
    noun = "database" if len(results) == 1 else "databases"
    return f"{len(results)} {noun}: {', '.join(parts)}"


def _why(result: DatabaseResult) -> str:
    if result.error is None:
        return result.alias
    first = result.error.strip().splitlines()[0] if result.error.strip() else ""
    if len(first) > 120:
        first = first[:117].rstrip() + "…"
    return f"{result.alias}: {first}"


def report(results: Sequence[DatabaseResult]) -> dict[str, Any]:
    """The ``--report-json`` document."""
    return {
        "schema_version": REPORT_SCHEMA_VERSION,
        "exit_code": int(overall_exit_code(results)),
        "summary": summary(results),
        "databases": [r.as_json() for r in results],
    }


SUCCESS = frozenset(
    {
        DatabaseOutcome.APPLIED,
        DatabaseOutcome.UNAPPLIED,
        DatabaseOutcome.NOTHING_TO_DO,
        DatabaseOutcome.PLANNED,
    }
)
