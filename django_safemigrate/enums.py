"""Closed sets of values shared by every part of the app."""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    """Exit codes of ``safemigrate`` and ``checkmigrations`` (see README, "Exit codes")."""

    OK = 0
    #: ``safemigrate``: a migration failed and was rolled back.
    #: ``checkmigrations``: findings at or above ``--fail-on``.
    FAILED = 1
    #: Bad usage or configuration; nothing was touched.
    USAGE = 2
    #: Blocked by governance (an edited applied migration, a missing review, a phase).
    BLOCKED = 3
    #: The migration lock could not be taken within the wait time.
    LOCK_TIMEOUT = 4


class RunOutcome(enum.StrEnum):
    """How one run of ``migrate`` or ``safemigrate`` ended, as kept in the ledger."""

    RUNNING = "running"
    APPLIED = "applied"
    NOTHING_TO_DO = "nothing_to_do"
    PLANNED = "planned"
    FAILED = "failed"
    BLOCKED = "blocked"
    LOCK_TIMEOUT = "lock_timeout"
    INTERRUPTED = "interrupted"


class MigrationOutcome(enum.StrEnum):
    """What happened to one migration in one run."""

    APPLIED = "applied"
    FAKED = "faked"
    UNAPPLIED = "unapplied"
    FAILED = "failed"
    #: Found applied without a ledger entry; its checksum was recorded as the baseline.
    ADOPTED = "adopted"


class ChecksumPolicy(enum.StrEnum):
    """What ``safemigrate`` does when an applied migration's file was edited."""

    ERROR = "error"
    WARN = "warn"
