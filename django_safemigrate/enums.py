"""Closed sets of values shared by every part of the app."""

from __future__ import annotations

import enum
from collections.abc import Iterable


class ExitCode(enum.IntEnum):
    """Exit codes of ``safemigrate`` and ``checkmigrations`` (see README, "Exit codes")."""

    OK = 0
    #: ``safemigrate``: a migration failed (the message says what became of its failed step).
    #: ``checkmigrations``: findings at or above ``--fail-on``.
    FAILED = 1
    #: Bad usage or configuration; nothing was touched.
    USAGE = 2
    #: Blocked by governance (an edited applied migration, a missing review, a phase).
    BLOCKED = 3
    #: The migration lock could not be taken within the wait time, or was lost during the run.
    LOCK_TIMEOUT = 4


class RunOutcome(enum.StrEnum):
    """How one run of ``migrate`` or ``safemigrate`` ended, as kept in the ledger."""

    RUNNING = "running"
    APPLIED = "applied"
    #: A backward plan: migrations were unapplied (and none applied).
    UNAPPLIED = "unapplied"
    NOTHING_TO_DO = "nothing_to_do"
    PLANNED = "planned"
    FAILED = "failed"
    BLOCKED = "blocked"
    LOCK_TIMEOUT = "lock_timeout"
    INTERRUPTED = "interrupted"


class DatabaseOutcome(enum.StrEnum):
    """How one database of a several-database ``safemigrate`` ended (``--report-json``).

    The values a ledger run can end with keep their :class:`RunOutcome` names; the others
    are for databases whose run never reached a ledger, or never started.
    """

    APPLIED = RunOutcome.APPLIED.value
    UNAPPLIED = RunOutcome.UNAPPLIED.value
    NOTHING_TO_DO = RunOutcome.NOTHING_TO_DO.value
    #: ``--plan``: the plan was shown, nothing changed.
    PLANNED = RunOutcome.PLANNED.value
    FAILED = RunOutcome.FAILED.value
    BLOCKED = RunOutcome.BLOCKED.value
    LOCK_TIMEOUT = RunOutcome.LOCK_TIMEOUT.value
    #: The lock was lost during the run.
    INTERRUPTED = RunOutcome.INTERRUPTED.value
    #: The database could not be reached (or refused the credentials): exit 2.
    UNREACHABLE = "unreachable"
    #: Any other usage or configuration error for this database: exit 2.
    USAGE_ERROR = "usage_error"
    #: Not run: an earlier database did not succeed and ``--fail-fast`` was given.
    NOT_RUN = "not_run"


class MigrationOutcome(enum.StrEnum):
    """What happened to one migration in one run."""

    APPLIED = "applied"
    FAKED = "faked"
    UNAPPLIED = "unapplied"
    FAILED = "failed"
    #: Found applied without a ledger entry; its checksum was recorded as the baseline.
    ADOPTED = "adopted"


class DriftPolicy(enum.StrEnum):
    """What ``safemigrate`` does when the database drifted from its applied migrations."""

    #: No drift check before a deploy.
    OFF = "off"
    #: Print the drift and go on.
    WARN = "warn"
    #: Stop before changing anything (exit 3).
    STOP = "stop"


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


class Kind(enum.StrEnum):
    """What a finding puts at risk: the reason behind its severity.

    A finding has one or more kinds; ``REVIEW`` can ask for reviews by kind (README,
    "Which migrations need a review").
    """

    #: Rows or values are gone afterwards (a dropped column or table, a lossy cast).
    LOSES_DATA = "loses-data"
    #: The code still running during the deploy fails against the new schema (a column it
    #: reads is gone or renamed, an insert it makes now violates NOT NULL).
    BREAKS_OLD_CODE = "breaks-old-code"
    #: Reads or writes wait while it runs (a strong lock held for a scan, a rewrite, a build).
    BLOCKS_TRAFFIC = "blocks-traffic"
    #: The migration can fail part-way or not run at all as written.
    MAY_FAIL = "may-fail"
    #: It cannot be unapplied.
    IRREVERSIBLE = "irreversible"
    #: Code or SQL the analysis cannot see into: a person has to read it.
    OPAQUE = "opaque"

    @property
    def phrase(self) -> str:
        """What a migration of this kind does, after "migrations that"."""
        return _KIND_PHRASES[self]


_KIND_PHRASES = {
    Kind.LOSES_DATA: "lose data",
    Kind.BREAKS_OLD_CODE: "break the old code",
    Kind.BLOCKS_TRAFFIC: "block traffic",
    Kind.MAY_FAIL: "may fail part-way",
    Kind.IRREVERSIBLE: "cannot be unapplied",
    Kind.OPAQUE: "run code the analysis cannot see into",
}


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

    #: Expand: safe while the old code and the new code both run.
    PRE_DEPLOY = "pre_deploy"
    #: Contract: only once the old code is gone (removals, renames, NOT NULL on a live column).
    POST_DEPLOY = "post_deploy"
    #: Either side of the rollout (the older package's ``Safe.always()``).
    ALWAYS = "always"


class RequestedPhase(enum.StrEnum):
    """What ``safemigrate --phase`` asks for."""

    #: Everything in the plan (subject to reviews).
    ALL = "all"
    #: Before the new code rolls out: post-deploy migrations wait.
    PRE = "pre"
    #: After the rollout: everything, post-deploy migrations included.
    POST = "post"


class ReviewState(enum.StrEnum):
    """Where a migration stands with its reviewers, for its current checksum."""

    NOT_REQUIRED = "not_required"
    #: Needs a review and has none for any version of the file.
    PENDING = "pending"
    #: Approved, but for another checksum: the file changed after the approval.
    STALE = "stale"
    APPROVED = "approved"
    #: The latest decision is a rejection; blocks until a later approval.
    REJECTED = "rejected"


class Direction(enum.StrEnum):
    """Which way a plan moves a migration: applying it, or unapplying it (a rollback).

    The gate judges, records and asks reviews for each direction apart: approving a
    migration does not approve unapplying it.
    """

    FORWARD = "forward"
    BACKWARD = "backward"


class Decision(enum.StrEnum):
    """A reviewer's decision."""

    APPROVE = "approve"
    REJECT = "reject"


class Verdict(enum.StrEnum):
    """What the gate decided for one migration of the plan."""

    RUN = "run"
    #: Held back by design (a post-deploy migration in the pre-deploy phase, or what
    #: depends only on such): not an error.
    DEFERRED = "deferred"
    #: Needs someone to act (a review, a rejected migration, a pre-deploy migration that
    #: depends on a post-deploy one).
    BLOCKED = "blocked"


class OnBlocked(enum.StrEnum):
    """What ``safemigrate`` does with the rest of the plan when something is blocked."""

    #: Apply nothing (exit 3).
    STOP = "stop"
    #: Apply what neither is blocked nor depends on a blocked migration.
    APPLY_UNBLOCKED = "apply_unblocked"


class LockRetriesExhausted(enum.StrEnum):
    """What a strong-lock step does once its lock-retry schedule has run out."""

    #: Fail the run (exit 1); the step was rolled back.
    STOP = "stop"
    #: One last attempt without a lock timeout: it queues until the lock is granted.
    WAIT = "wait"


class GovernedStatus(enum.StrEnum):
    """A governed migration's status in the admin's list."""

    PENDING_REVIEW = "pending_review"
    APPROVED = "approved"
    REJECTED = "rejected"
    APPLIED = "applied"
    NOT_REQUIRED = "not_required"


class CommandLineReviews(enum.StrEnum):
    """What ``reviewmigration`` may record (``SAFEMIGRATE['COMMAND_LINE_REVIEWS']``)."""

    #: Approvals and rejections, as the named user (``--as``), with the OS user and host.
    ALLOW = "allow"
    #: Rejections only (they can only stop a deploy); approvals in the admin only.
    REJECT_ONLY = "reject_only"
    #: No decisions from the command line: the admin only.
    OFF = "off"
