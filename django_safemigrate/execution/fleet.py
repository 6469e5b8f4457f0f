"""Several databases in one ``safemigrate`` run: which ones, how each ended, the whole.

Each database is still governed on its own (its lock, its ledger, its gate, its exit
code): this module only chooses the databases, names how each run ended and folds the
per-database exit codes into one. It never touches a connection.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
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
