"""Closed sets of values shared by every part of the app."""

from __future__ import annotations

import enum
from collections.abc import Iterable


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


class Risk(enum.StrEnum):
    """How dangerous an operation (or a migration, the highest of its operations) is."""

    #: Metadata-only or online, and the old code keeps working.
    SAFE = "safe"
    #: Blocks reads or writes for time that grows with the table, scans or rewrites
    #: under a strong lock, an unreviewed data migration, or breaks old code's writes.
    RISKY = "risky"
    #: Loses data or breaks the old running code with no way back.
    DESTRUCTIVE = "destructive"

    @property
    def rank(self) -> int:
        return _RISK_RANK[self]

    @classmethod
    def highest(cls, risks: Iterable[Risk]) -> Risk:
        return max(risks, key=lambda r: r.rank, default=cls.SAFE)


_RISK_RANK = {Risk.SAFE: 0, Risk.RISKY: 1, Risk.DESTRUCTIVE: 2}


class LockMode(enum.StrEnum):
    """PostgreSQL table lock modes, weakest first.

    https://www.postgresql.org/docs/current/explicit-locking.html#LOCKING-TABLES
    """

    ACCESS_SHARE = "ACCESS SHARE"
    ROW_SHARE = "ROW SHARE"
    ROW_EXCLUSIVE = "ROW EXCLUSIVE"
    SHARE_UPDATE_EXCLUSIVE = "SHARE UPDATE EXCLUSIVE"
    SHARE = "SHARE"
    SHARE_ROW_EXCLUSIVE = "SHARE ROW EXCLUSIVE"
    EXCLUSIVE = "EXCLUSIVE"
    ACCESS_EXCLUSIVE = "ACCESS EXCLUSIVE"

    @property
    def blocks_writes(self) -> bool:
        return list(LockMode).index(self) >= list(LockMode).index(LockMode.SHARE)

    @property
    def blocks_reads(self) -> bool:
        return self is LockMode.ACCESS_EXCLUSIVE


class Phase(enum.StrEnum):
    """When a migration may run relative to the code rollout."""

    PRE_DEPLOY = "pre_deploy"
    POST_DEPLOY = "post_deploy"
