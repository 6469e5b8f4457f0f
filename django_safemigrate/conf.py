"""The one place that reads ``settings.SAFEMIGRATE``.

Everything else receives a :class:`SafemigrateSettings` value, so pure code
never touches Django settings and tests can pass their own. The value is read
lazily (never at import time), validated as a whole, and cached until Django
sends ``setting_changed`` for ``SAFEMIGRATE`` or ``DATABASES``.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import re
from collections.abc import Mapping
from typing import Any

from django.conf import settings as django_settings

from django_safemigrate.enums import (
    ChecksumPolicy,
    CommandLineReviews,
    DriftPolicy,
    Kind,
    LockRetriesExhausted,
    OnBlocked,
    RequestedPhase,
    Risk,
)

#: The older package's string modes, accepted as the whole ``SAFEMIGRATE`` value.
LEGACY_MODES = ("strict", "nonstrict", "disabled")

#: One attempt of a strong-lock step: its ``lock_timeout`` and the sleep after it
#: failed on a lock timeout or a deadlock, in seconds.
LockAttempt = tuple[float, float]

#: The default ``LOCK_RETRIES``, by tiers: (attempts, lock_timeout, sleep). A request
#: for a strong lock that waits makes every later query on the table wait behind it,
#: so each attempt waits briefly and gives the traffic room between attempts. Most
#: locks are free within 100 ms; the longer tiers are for tables whose transactions
#: always overlap (a gap never comes, so the wait must outlast the longest of them)
#: and for a long transaction that ends within a minute or two. The first 20 attempts
#: (about 10 s) wait 0.1 s each, so a request or report holding the table for a few
#: seconds never makes the traffic wait longer. 50 attempts; at most 24 s spent waiting
#: for locks and 1 min 13 s asleep between attempts (README, "Lock retries").
_DEFAULT_TIERS = (
    (5, 0.1, 0.05),
    (15, 0.1, 0.5),
    (10, 0.2, 1.0),
    (10, 0.5, 2.0),
    (5, 1.0, 3.0),
    (5, 2.0, 5.0),
)
DEFAULT_LOCK_RETRIES: tuple[LockAttempt, ...] = tuple(
    (lock, sleep) for count, lock, sleep in _DEFAULT_TIERS for _ in range(count)
)


@dataclasses.dataclass(frozen=True)
class SafemigrateSettings:
    """Validated ``SAFEMIGRATE`` settings with their documented defaults."""

    #: Seconds a runner waits for the migration lock before exiting with code 4.
    lock_wait: float = 600.0
    #: Seconds between two attempts to take the lock while another runner holds it.
    lock_poll_interval: float = 0.5
    #: Database alias whose session holds the lock; ``None`` means the alias being migrated.
    #: Point it at a direct connection when the migrated alias goes through a pooler.
    lock_database: str | None = None
    #: Seconds of waiting for the migration lock after which ``lock_wait_alert`` is sent
    #: (once per wait) and a ``lock.wait_alert`` event logged; ``None`` never alerts.
    lock_wait_alert: float | None = 30.0
    #: ``"error"`` stops ``safemigrate`` (exit 3) when an applied migration's file was
    #: edited; ``"warn"`` reports it and goes on.
    checksum_mismatch: ChecksumPolicy = ChecksumPolicy.ERROR
    #: ``checkmigrations`` fails on findings at or above this risk; ``None`` never fails.
    fail_on: Risk | None = Risk.RISKY
    #: Tables with fewer estimated rows get lock findings that are reported, not blocking.
    small_table_rows: int = 10_000
    #: Per-rule severity; ``None`` switches the rule off.
    rules: Mapping[str, Risk | None] = dataclasses.field(default_factory=dict)
    #: Apps (``"shop"``) and migrations (``"shop.0003_x"``) that ``checkmigrations`` skips.
    ignore: frozenset[str] = frozenset()
    #: The committed file of released migrations' checksums; ``None``: ``migrations.lock``
    #: next to ``manage.py`` (``BASE_DIR`` when set, else the current directory).
    lockfile: str | None = None
    #: ``lock_timeout`` (seconds, 0 = none) for statements that take strong locks,
    #: and for RunSQL/RunPython; concurrent builds and VALIDATE CONSTRAINT get none.
    lock_timeout: float = 5.0
    #: ``statement_timeout`` (seconds, 0 = none) for the same statements.
    statement_timeout: float = 0.0
    #: How often a step that hit a lock timeout or a deadlock is tried again.
    retries: int = 5
    #: First wait before a retry (seconds); doubles each time up to the max.
    retry_backoff: float = 1.0
    retry_backoff_max: float = 30.0
    #: The attempts of a strong-lock step: (lock_timeout, sleep after a failed attempt)
    #: pairs. Derived from the four settings above when the project sets any of them
    #: and not this one (:func:`schedule_from_retries`).
    lock_retries: tuple[LockAttempt, ...] = DEFAULT_LOCK_RETRIES
    #: When every attempt of ``lock_retries`` failed: stop, or one attempt that waits.
    lock_retries_exhausted: LockRetriesExhausted = LockRetriesExhausted.STOP
    #: The older timing keys set next to ``LOCK_RETRIES``, which overrides them
    #: (system-check warning ``safemigrate.W004``).
    overridden_keys: tuple[str, ...] = ()
    #: Before a strong-lock step: ``"wait"`` for old transactions on its tables (up to
    #: ``preflight_wait`` seconds, then go on under the lock timeout), ``"warn"``, or
    #: ``"stop"`` the run before the step.
    preflight: str = "wait"
    #: Transactions open longer than this (seconds) count as old.
    preflight_min_age: float = 5.0
    preflight_wait: float = 60.0
    #: The lowest risk that needs a recorded review before ``safemigrate`` applies a
    #: migration; ``None``: no reviews needed.
    review: Risk | None = Risk.DESTRUCTIVE
    #: Kinds of findings that need a recorded review too, whatever their risk
    #: (``REVIEW = ["destructive", "breaks-old-code"]``).
    review_kinds: frozenset[Kind] = frozenset()
    #: Migrations of installed packages (Django's contrib apps, third-party apps, this
    #: package's own) are analysed and shown, but neither fail ``checkmigrations`` nor need
    #: reviews; ``True`` governs them all like the project's, a set of app labels governs
    #: those packages' apps (:mod:`django_safemigrate.scope`).
    govern_packages: bool | frozenset[str] = False
    #: What ``safemigrate`` runs without ``--phase``.
    default_phase: RequestedPhase = RequestedPhase.ALL
    #: Without ``--apply-unblocked``: stop the whole plan when anything is blocked, or
    #: apply what is not blocked.
    on_blocked: OnBlocked = OnBlocked.STOP
    #: Infer each migration's phase from its operations when the file declares none;
    #: ``False`` treats an undeclared migration as runnable in either phase.
    infer_phase: bool = True
    #: Gate a database with no migration applied yet (reviews and phases); by default a
    #: new database runs everything: it holds no data to lose and no old code uses it.
    govern_fresh_database: bool = False
    #: What ``reviewmigration`` may record: anyone who can run management commands can
    #: name any reviewer with ``--as``, so a project can keep approvals to the admin.
    command_line_reviews: CommandLineReviews = CommandLineReviews.ALLOW
    #: Run each risky operation on a table that already exists in its online form
    #: (:mod:`django_safemigrate.online`); ``False`` runs what the backend emits as it is.
    #: A migration turns it off for itself with ``safemigrate_online = False``.
    online: bool = True
    #: Apply a plan walking the project state forward once (each operation costs what it
    #: touches, as in the analysis) instead of Django's copy and re-render of the whole
    #: state before every operation; ``False`` applies every migration as Django does.
    linear_apply: bool = True
    #: Before a ``safemigrate`` run: compare the database with what its applied migrations
    #: build (``checkmigrations --drift``), and ``"warn"`` or ``"stop"`` (exit 3) on drift.
    drift: DriftPolicy = DriftPolicy.OFF
    #: Shell-style patterns of object names (tables, indexes, constraints, ``table.column``)
    #: that the drift check leaves out; a table's pattern covers what belongs to it.
    drift_ignore: tuple[str, ...] = ()
    #: Before the first destructive migration of a run: ``"off"``, ``"warn"`` (say what is
    #: wrong and go on) or ``"stop"`` (apply nothing) unless a recent recovery point exists
    #: (:mod:`django_safemigrate.execution.recovery`).
    backup_check: str = "off"
    #: The newest recovery point may be this old (seconds) for the check to pass.
    backup_max_age: float = 86_400.0
    #: Dotted path of a project callable ``(connection) -> datetime | None`` giving the
    #: time of the last recovery point; ``None`` reads ``pg_stat_archiver``.
    backup_callable: str | None = None
    #: Dotted path of a project callable ``() -> iterable of (name, settings_dict)``: the
    #: databases ``safemigrate --callable-databases`` migrates, each a ``DATABASES`` entry
    #: that is not in ``DATABASES``. Imported and called by that run only, once.
    databases_callable: str | None = None
    #: Copy the data a dropped column or table held into ``archive_schema`` first, in the
    #: same step (:mod:`django_safemigrate.execution.archive`).
    archive: bool = False
    archive_schema: str = "safemigrate_archive"
    #: ``False`` switches the gate off (the older package's ``"disabled"``).
    govern: bool = True
    #: The older package's mode when ``SAFEMIGRATE`` is one of its strings.
    legacy_mode: str | None = None
    #: ``False`` when ``SAFEMIGRATE`` is not set at all.
    configured: bool = True

    def ignores(self, app_label: str, name: str) -> bool:
        return app_label in self.ignore or f"{app_label}.{name}" in self.ignore


class SettingsProblem(Exception):
    """One invalid part of ``SAFEMIGRATE``; ``check_id`` is its system-check id."""

    def __init__(self, check_id: str, message: str, hint: str) -> None:
        super().__init__(message)
        self.check_id = check_id
        self.message = message
        self.hint = hint


class InvalidSettings(Exception):
    """``SAFEMIGRATE`` has one or more problems."""

    def __init__(self, problems: list[SettingsProblem]) -> None:
        super().__init__("\n".join(p.message for p in problems))
        self.problems = problems


_FIELDS = {
    "LOCK_WAIT": "lock_wait",
    "LOCK_POLL_INTERVAL": "lock_poll_interval",
    "LOCK_DATABASE": "lock_database",
    "LOCK_WAIT_ALERT": "lock_wait_alert",
    "CHECKSUM_MISMATCH": "checksum_mismatch",
    "FAIL_ON": "fail_on",
    "SMALL_TABLE_ROWS": "small_table_rows",
    "RULES": "rules",
    "IGNORE": "ignore",
    "LOCKFILE": "lockfile",
    "LOCK_TIMEOUT": "lock_timeout",
    "STATEMENT_TIMEOUT": "statement_timeout",
    "RETRIES": "retries",
    "RETRY_BACKOFF": "retry_backoff",
    "RETRY_BACKOFF_MAX": "retry_backoff_max",
    "LOCK_RETRIES": "lock_retries",
    "LOCK_RETRIES_EXHAUSTED": "lock_retries_exhausted",
    "PREFLIGHT": "preflight",
    "PREFLIGHT_MIN_AGE": "preflight_min_age",
    "PREFLIGHT_WAIT": "preflight_wait",
    "REVIEW": "review",
    "DEFAULT_PHASE": "default_phase",
    "ON_BLOCKED": "on_blocked",
    "INFER_PHASE": "infer_phase",
    "GOVERN_FRESH_DATABASE": "govern_fresh_database",
    "GOVERN_PACKAGES": "govern_packages",
    "ONLINE": "online",
    "LINEAR_APPLY": "linear_apply",
    "COMMAND_LINE_REVIEWS": "command_line_reviews",
    "DRIFT": "drift",
    "DRIFT_IGNORE": "drift_ignore",
    "BACKUP_CHECK": "backup_check",
    "BACKUP_MAX_AGE": "backup_max_age",
    "BACKUP_CALLABLE": "backup_callable",
    "ARCHIVE": "archive",
    "ARCHIVE_SCHEMA": "archive_schema",
    "DATABASES_CALLABLE": "databases_callable",
}

#: ``BACKUP_CHECK``'s values.
BACKUP_CHECK_CHOICES = ("off", "warn", "stop")
#: The most ``BACKUP_MAX_AGE`` may be: a year (more is a unit mistake).
BACKUP_MAX_AGE_LIMIT = 366 * 86_400.0
#: Names PostgreSQL reserves or that hold everything else: never an archive schema.
RESERVED_SCHEMAS = ("public", "information_schema")


def legacy_settings(mode: str) -> SafemigrateSettings:
    """The older package's modes, in this app's terms.

    ``safemigrate`` runs the pre-deploy phase, judged by the ``safe`` markers alone
    (an unmarked migration may run in either phase), and needs no reviews; ``strict``
    stops when a pre-deploy migration depends on a post-deploy one, ``nonstrict``
    applies what it can, and ``disabled`` applies everything, like ``migrate``.
    """
    return SafemigrateSettings(
        legacy_mode=mode,
        review=None,
        default_phase=RequestedPhase.PRE,
        on_blocked=OnBlocked.APPLY_UNBLOCKED if mode == "nonstrict" else OnBlocked.STOP,
        infer_phase=False,
        govern=mode != "disabled",
    )


@dataclasses.dataclass(frozen=True)
class Seconds:
    """The valid range of a duration setting.

    Upper bounds are there because a value beyond them is a mistake (milliseconds
    written as seconds, a stray digit), never a policy: a day of waiting for the lock,
    an hour queued for a strong lock while every query on the table waits behind it.
    """

    maximum: float
    #: ``False``: 0 is refused (an interval to sleep between polls).
    zero: bool = True
    #: Sent to PostgreSQL in whole milliseconds, where 0 means no limit: a positive
    #: value under 1 ms would silently become "no limit".
    milliseconds: bool = False

    def describe(self) -> str:
        low = "0 or more" if self.zero else "more than 0"
        if self.milliseconds:
            low = "0 (no limit) or from 0.001 (1 ms)"
        return f"{low} up to {self.maximum:g} seconds"

    def accepts(self, value: float) -> bool:
        if not math.isfinite(value) or value < 0 or value > self.maximum:
            return False
        if value == 0:
            return self.zero
        return not (self.milliseconds and value < 0.001)


#: The range of each duration setting (README, "Settings").
SECONDS = {
    "LOCK_WAIT": Seconds(86_400),
    "LOCK_POLL_INTERVAL": Seconds(60, zero=False),
    "LOCK_TIMEOUT": Seconds(3_600, milliseconds=True),
    "STATEMENT_TIMEOUT": Seconds(86_400, milliseconds=True),
    "RETRY_BACKOFF": Seconds(3_600),
    "RETRY_BACKOFF_MAX": Seconds(3_600),
    "PREFLIGHT_MIN_AGE": Seconds(86_400),
    "PREFLIGHT_WAIT": Seconds(86_400),
}
#: The most retries a step may have after lock timeouts or deadlocks.
MAX_RETRIES = 100
#: The most pairs ``LOCK_RETRIES`` may have.
MAX_LOCK_ATTEMPTS = 100
#: The sleep of a ``LOCK_RETRIES`` pair.
LOCK_RETRY_SLEEP = Seconds(3_600)
#: The most a whole ``LOCK_RETRIES`` schedule may take, lock waits and sleeps: more is a
#: unit mistake, as for ``LOCK_WAIT``.
MAX_LOCK_RETRIES_TOTAL = 86_400.0
#: The settings that made the older single lock timeout with exponential backoff.
OLDER_TIMING_KEYS = ("LOCK_TIMEOUT", "RETRIES", "RETRY_BACKOFF", "RETRY_BACKOFF_MAX")


def check_seconds(what: str, value: Any, bounds: Seconds, example: float) -> float:
    """``value`` as seconds within ``bounds``, or :class:`SettingsProblem` naming ``what``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SettingsProblem(
            "safemigrate.E002",
            f"{what} must be a number of seconds, not {value!r}.",
            f"Set {what} to a number such as {example:g}.",
        )
    if not bounds.accepts(float(value)):
        raise SettingsProblem(
            "safemigrate.E003",
            f"{what} is {value!r}, but it must be a finite number of seconds, {bounds.describe()}.",
            f"Set {what} to a value {bounds.describe()}, such as {example:g}.",
        )
    return float(value)


def check_retries(what: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_RETRIES:
        raise SettingsProblem(
            "safemigrate.E013",
            f"{what} is {value!r}, but it must be a whole number from 0 to {MAX_RETRIES}.",
            "Set it to how many times a step may be retried after a lock timeout, e.g. 5.",
        )
    return value


def check_lock_retries(what: str, value: Any) -> tuple[LockAttempt, ...]:
    """``value`` as a lock-retry schedule, or :class:`SettingsProblem` naming ``what``.

    A list of ``(lock_timeout, sleep)`` pairs of seconds. A ``lock_timeout`` of 0 (no
    limit) never times out, so the attempts after it could only follow a deadlock: it
    is accepted in the last pair only, as a deliberate final attempt that waits.
    """
    example = "[(0.1, 0.05), (0.2, 0.5), (0.5, 2), (1, 5)]"
    hint = f"Set {what} to a list of (lock_timeout, sleep) pairs such as {example}."
    if isinstance(value, str | bytes) or not isinstance(value, list | tuple):
        raise SettingsProblem(
            "safemigrate.E020",
            f"{what} is {value!r}, but it must be a list of (lock_timeout, sleep) pairs "
            "of seconds, one per attempt.",
            hint,
        )
    if not value or len(value) > MAX_LOCK_ATTEMPTS:
        raise SettingsProblem(
            "safemigrate.E020",
            f"{what} has {len(value)} pairs, but it must have from 1 to {MAX_LOCK_ATTEMPTS} "
            "(one per attempt).",
            hint,
        )
    schedule: list[LockAttempt] = []
    for index, pair in enumerate(value):
        item = f"{what}[{index}]"
        if isinstance(pair, str | bytes) or not isinstance(pair, list | tuple) or len(pair) != 2:
            raise SettingsProblem(
                "safemigrate.E020",
                f"{item} is {pair!r}, but each item must be a pair (lock_timeout, sleep) of "
                "seconds.",
                hint,
            )
        lock = check_seconds(f"{item}'s lock_timeout", pair[0], SECONDS["LOCK_TIMEOUT"], 0.1)
        sleep = check_seconds(f"{item}'s sleep", pair[1], LOCK_RETRY_SLEEP, 0.5)
        if lock == 0 and index < len(value) - 1:
            raise SettingsProblem(
                "safemigrate.E020",
                f"{item} has lock_timeout 0 (no limit), but only the last pair may: an "
                "attempt without a lock timeout queues until the lock is granted, blocking "
                "every later query on the table meanwhile, and the attempts after it would "
                "never be needed for a lock timeout.",
                "Give it a lock timeout, or move it to the end; or set "
                "SAFEMIGRATE['LOCK_RETRIES_EXHAUSTED'] = 'wait', which adds such an attempt "
                "after the schedule.",
            )
        schedule.append((lock, sleep))
    total = schedule_seconds(schedule)
    if total > MAX_LOCK_RETRIES_TOTAL:
        raise SettingsProblem(
            "safemigrate.E020",
            f"{what} adds up to {total:g} seconds of lock waits and sleeps, more than "
            f"{MAX_LOCK_RETRIES_TOTAL:g} (a day): a unit mistake (milliseconds written as "
            "seconds?) rather than a schedule.",
            hint,
        )
    return tuple(schedule)


def schedule_seconds(schedule: tuple[LockAttempt, ...] | list[LockAttempt]) -> float:
    """The longest a schedule can take: every lock timeout, and the sleeps between attempts
    (the last pair's sleep only comes before the final attempt of ``"wait"``)."""
    return sum(lock for lock, _ in schedule) + sum(sleep for _, sleep in schedule[:-1])


def check_exhausted(what: str, value: Any) -> LockRetriesExhausted:
    try:
        return LockRetriesExhausted(value)
    except ValueError:
        raise SettingsProblem(
            "safemigrate.E021",
            f"{what} is {value!r}, but it must be 'stop' or 'wait'.",
            "Use 'stop' to fail the run (the step is rolled back) when every attempt timed "
            "out, or 'wait' for one last attempt that waits for the lock without a timeout.",
        ) from None


def schedule_from_retries(
    lock_timeout: float, retries: int, backoff: float, backoff_max: float
) -> tuple[LockAttempt, ...]:
    """The older settings' behaviour as a schedule: ``retries + 1`` attempts under the
    same ``lock_timeout``, the sleep doubling from ``backoff`` up to ``backoff_max``."""
    return tuple((lock_timeout, min(backoff_max, backoff * 2.0**n)) for n in range(retries + 1))


def _number(key: str, value: Any) -> float:
    default = getattr(SafemigrateSettings, _FIELDS[key])
    return check_seconds(f"SAFEMIGRATE['{key}']", value, SECONDS[key], default)


def parse_settings(raw: object, database_aliases: Mapping[str, Any]) -> SafemigrateSettings:
    """Validate a raw ``SAFEMIGRATE`` value.

    Raises :class:`InvalidSettings` listing every problem, not just the first.
    """
    if raw is None:
        return SafemigrateSettings(configured=False)
    if isinstance(raw, str):
        if raw.lower() in LEGACY_MODES:
            return legacy_settings(raw.lower())
        raise InvalidSettings(
            [
                SettingsProblem(
                    "safemigrate.E001",
                    f"SAFEMIGRATE is the string {raw!r}, which is not one of "
                    f"{', '.join(repr(m) for m in LEGACY_MODES)}.",
                    "Use a dict of settings, or one of the older package's modes.",
                )
            ]
        )
    if not isinstance(raw, Mapping):
        raise InvalidSettings(
            [
                SettingsProblem(
                    "safemigrate.E001",
                    f"SAFEMIGRATE must be a dict (or a mode string), not {type(raw).__name__}.",
                    "Set SAFEMIGRATE = {...} in your settings, or remove it to use the defaults.",
                )
            ]
        )

    problems: list[SettingsProblem] = []
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in _FIELDS:
            problems.append(
                SettingsProblem(
                    "safemigrate.E004",
                    f"SAFEMIGRATE has an unknown key {key!r}.",
                    f"Known keys: {', '.join(sorted(_FIELDS))}.",
                )
            )
            continue
        try:
            parsed = _parse_value(key, value, database_aliases)
        except SettingsProblem as problem:
            problems.append(problem)
            continue
        if key == "REVIEW":
            values["review"], values["review_kinds"] = parsed
        else:
            values[_FIELDS[key]] = parsed
    if problems:
        raise InvalidSettings(problems)
    older = tuple(key for key in OLDER_TIMING_KEYS if key in raw)
    if "LOCK_RETRIES" in raw:
        values["overridden_keys"] = older
    elif older:
        # A project that tuned the single lock timeout keeps what it chose.
        defaults = SafemigrateSettings()
        values["lock_retries"] = schedule_from_retries(
            values.get("lock_timeout", defaults.lock_timeout),
            values.get("retries", defaults.retries),
            values.get("retry_backoff", defaults.retry_backoff),
            values.get("retry_backoff_max", defaults.retry_backoff_max),
        )
    return SafemigrateSettings(**values)


def _parse_drift(value: Any) -> DriftPolicy:
    try:
        return DriftPolicy(value)
    except ValueError:
        raise SettingsProblem(
            "safemigrate.E025",
            f"SAFEMIGRATE['DRIFT'] is {value!r}, but it must be 'off', 'warn' or 'stop'.",
            "Use 'stop' to refuse a deploy onto a database whose schema differs from what "
            "its applied migrations build, 'warn' to print the drift and go on, or 'off'.",
        ) from None


def _parse_drift_ignore(value: Any) -> tuple[str, ...]:
    if (
        isinstance(value, str)
        or not isinstance(value, list | tuple | set | frozenset)
        or not all(isinstance(v, str) and v.strip() for v in value)
    ):
        raise SettingsProblem(
            "safemigrate.E026",
            f"SAFEMIGRATE['DRIFT_IGNORE'] is {value!r}, but it must be a list of patterns "
            "of object names (shell-style: * and ? match any characters).",
            "Use a list of strings such as ['shop_item_search_idx', 'audit_*', "
            "'shop_order.legacy_*'].",
        )
    return tuple(sorted(value))


#: What ``DATABASES_CALLABLE`` must point at (the hint of its problems).
DATABASES_CALLABLE_HINT = (
    "Point it at a function of your project that takes no arguments and returns (name, "
    "settings) pairs, each settings a DATABASES entry (a dict with ENGINE, NAME, HOST, ...), "
    "such as 'myproject.tenants.databases'; or set it to None."
)


def _databases_callable(value: Any) -> str | None:
    """A dotted path, checked for its shape only: unlike ``BACKUP_CALLABLE`` it is not
    imported here, because every command reads these settings and only ``safemigrate
    --callable-databases`` may run the project's code behind it (a registry of customer
    databases, say). The system check ``safemigrate.E038`` finds its module without
    running it."""
    if value is None:
        return None
    parts = value.split(".") if isinstance(value, str) else []
    if len(parts) < 2 or not all(part.isidentifier() for part in parts):
        raise SettingsProblem(
            "safemigrate.E038",
            f"SAFEMIGRATE['DATABASES_CALLABLE'] is {value!r}, but it must be the dotted path "
            "of a function (module.function).",
            DATABASES_CALLABLE_HINT,
        )
    return str(value)


#: Keys whose value is checked on its own.
_PARSERS = {
    "DRIFT": _parse_drift,
    "DRIFT_IGNORE": _parse_drift_ignore,
    "DATABASES_CALLABLE": _databases_callable,
}


def _parse_value(key: str, value: Any, database_aliases: Mapping[str, Any]) -> Any:
    if key in _PARSERS:
        return _PARSERS[key](value)
    if key in SECONDS:
        return _number(key, value)
    if key == "LOCK_WAIT_ALERT":
        return parse_lock_wait_alert(value)
    if key == "LOCK_DATABASE":
        if value is not None and value not in database_aliases:
            raise SettingsProblem(
                "safemigrate.E005",
                f"SAFEMIGRATE['LOCK_DATABASE'] is {value!r}, which is not a database alias "
                f"in DATABASES ({', '.join(sorted(database_aliases))}).",
                "Name an alias from DATABASES, or set it to None to lock on the migrated alias.",
            )
        return value
    if key == "CHECKSUM_MISMATCH":
        try:
            return ChecksumPolicy(value)
        except ValueError:
            choices = ", ".join(repr(p.value) for p in ChecksumPolicy)
            raise SettingsProblem(
                "safemigrate.E006",
                f"SAFEMIGRATE['CHECKSUM_MISMATCH'] is {value!r}, but it must be one of {choices}.",
                "Use 'error' to stop a deploy on an edited applied migration, or 'warn'.",
            ) from None
    if key == "PREFLIGHT":
        if value not in ("wait", "warn", "stop"):
            raise SettingsProblem(
                "safemigrate.E014",
                f"SAFEMIGRATE['PREFLIGHT'] is {value!r}, but it must be 'wait', 'warn' or 'stop'.",
                "Choose what to do about old transactions on a table a step will lock.",
            )
        return value
    if key == "RETRIES":
        return check_retries("SAFEMIGRATE['RETRIES']", value)
    if key == "LOCK_RETRIES":
        return check_lock_retries("SAFEMIGRATE['LOCK_RETRIES']", value)
    if key == "LOCK_RETRIES_EXHAUSTED":
        return check_exhausted("SAFEMIGRATE['LOCK_RETRIES_EXHAUSTED']", value)
    if key == "FAIL_ON":
        return parse_fail_on(value, "SAFEMIGRATE['FAIL_ON']", check_id="safemigrate.E007")
    if key == "SMALL_TABLE_ROWS":
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise SettingsProblem(
                "safemigrate.E008",
                f"SAFEMIGRATE['SMALL_TABLE_ROWS'] is {value!r}, but it must be a whole number "
                "of rows, 0 or more.",
                "Set it to a row count such as 10000, or 0 to treat every table as large.",
            )
        return value
    if key == "RULES":
        return _parse_rules(value)
    if key == "IGNORE":
        if (
            isinstance(value, str)
            or not isinstance(value, list | tuple | set | frozenset)
            or not all(isinstance(v, str) and v and v.count(".") <= 1 for v in value)
        ):
            raise SettingsProblem(
                "safemigrate.E010",
                f"SAFEMIGRATE['IGNORE'] is {value!r}, but it must be a list of app labels "
                "('shop') and migrations ('shop.0003_backfill').",
                "Use a list of strings such as ['legacy_app', 'shop.0003_backfill'].",
            )
        return frozenset(value)
    if key == "REVIEW":
        return parse_review(value)
    if key == "GOVERN_PACKAGES":
        if isinstance(value, bool):
            return value
        if (
            isinstance(value, str)
            or not isinstance(value, list | tuple | set | frozenset)
            or not all(isinstance(v, str) and v and "." not in v for v in value)
        ):
            raise SettingsProblem(
                "safemigrate.E024",
                f"SAFEMIGRATE['GOVERN_PACKAGES'] is {value!r}, but it must be True, False or "
                "a list of app labels of installed packages.",
                "Use True to govern every installed package's migrations like the project's "
                "own, or a list such as ['billing'] for some of them.",
            )
        return frozenset(value)
    if key == "DEFAULT_PHASE":
        try:
            return RequestedPhase(value)
        except ValueError:
            raise SettingsProblem(
                "safemigrate.E016",
                f"SAFEMIGRATE['DEFAULT_PHASE'] is {value!r}, but it must be 'all', 'pre' or "
                "'post'.",
                "Use 'all' to apply every migration, or 'pre' when safemigrate runs before "
                "the new code rolls out.",
            ) from None
    if key == "ON_BLOCKED":
        try:
            return OnBlocked(value)
        except ValueError:
            raise SettingsProblem(
                "safemigrate.E017",
                f"SAFEMIGRATE['ON_BLOCKED'] is {value!r}, but it must be 'stop' or "
                "'apply_unblocked'.",
                "Use 'stop' to apply nothing while anything is blocked.",
            ) from None
    if key in ("INFER_PHASE", "GOVERN_FRESH_DATABASE", "ONLINE", "LINEAR_APPLY"):
        if not isinstance(value, bool):
            raise SettingsProblem(
                "safemigrate.E018",
                f"SAFEMIGRATE['{key}'] is {value!r}, but it must be True or False.",
                f"Set SAFEMIGRATE['{key}'] to True or False.",
            )
        return value
    if key == "COMMAND_LINE_REVIEWS":
        try:
            return CommandLineReviews(value)
        except ValueError:
            raise SettingsProblem(
                "safemigrate.E019",
                f"SAFEMIGRATE['COMMAND_LINE_REVIEWS'] is {value!r}, but it must be 'allow', "
                "'reject_only' or 'off'.",
                "Use 'reject_only' or 'off' to keep approvals to the admin, where they are "
                "bound to a logged-in user.",
            ) from None
    if key in _BACKUP_KEYS:
        return _parse_backup(key, value)
    if key == "LOCKFILE":
        if value is not None and (not isinstance(value, str | os.PathLike) or not str(value)):
            raise SettingsProblem(
                "safemigrate.E011",
                f"SAFEMIGRATE['LOCKFILE'] is {value!r}, but it must be a file path.",
                "Set it to a path such as BASE_DIR / 'migrations.lock', or None for the default.",
            )
        return None if value is None else str(value)
    raise AssertionError(key)  # pragma: no cover - _FIELDS and this function list the same keys


_BACKUP_KEYS = ("BACKUP_CHECK", "BACKUP_MAX_AGE", "BACKUP_CALLABLE", "ARCHIVE", "ARCHIVE_SCHEMA")


def _parse_backup(key: str, value: Any) -> Any:
    """The recovery-point check (E030, E031) and the archive (E032, E033)."""
    if key == "BACKUP_CHECK":
        if value not in BACKUP_CHECK_CHOICES:
            raise SettingsProblem(
                "safemigrate.E030",
                f"SAFEMIGRATE['BACKUP_CHECK'] is {value!r}, but it must be 'off', 'warn' or "
                "'stop'.",
                "Use 'stop' to apply nothing when a run holds a destructive migration and no "
                "recent recovery point exists, 'warn' to say so and go on, or 'off'.",
            )
        return value
    if key == "BACKUP_MAX_AGE":
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
            or not 0 < value <= BACKUP_MAX_AGE_LIMIT
        ):
            raise SettingsProblem(
                "safemigrate.E031",
                f"SAFEMIGRATE['BACKUP_MAX_AGE'] is {value!r}, but it must be a number of "
                f"seconds, more than 0 up to {BACKUP_MAX_AGE_LIMIT:g} (a year).",
                "Set it to how old the newest recovery point may be, such as 86400 (a day).",
            )
        return float(value)
    if key == "BACKUP_CALLABLE":
        return _backup_callable(value)
    if key == "ARCHIVE":
        if not isinstance(value, bool):
            raise SettingsProblem(
                "safemigrate.E032",
                f"SAFEMIGRATE['ARCHIVE'] is {value!r}, but it must be True or False.",
                "Set it to True to copy what a dropped column or table held into the archive "
                "schema before it is dropped.",
            )
        return value
    if (
        not isinstance(value, str)
        or not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", value)
        or value.startswith("pg_")
        or value in RESERVED_SCHEMAS
    ):
        raise SettingsProblem(
            "safemigrate.E033",
            f"SAFEMIGRATE['ARCHIVE_SCHEMA'] is {value!r}, but it must be the name of a schema "
            "of its own: lower-case letters, digits and underscores, at most 63 characters, "
            "not starting with a digit or 'pg_', and neither 'public' nor "
            "'information_schema'.",
            "Keep the default 'safemigrate_archive', or name another schema such as "
            "'migration_archive'.",
        )
    return value


def _backup_callable(value: Any) -> str | None:
    """A dotted path that imports to a callable (imported now: a typo is found by the
    system checks, not in the middle of a deploy)."""
    from django.utils.module_loading import import_string

    if value is None:
        return None
    hint = (
        "Point it at a function of your project taking the database connection and "
        "returning the time of the last recovery point, such as 'myproject.backups.last_backup', "
        "or set it to None to read pg_stat_archiver."
    )
    if not isinstance(value, str) or "." not in value:
        raise SettingsProblem(
            "safemigrate.E031",
            f"SAFEMIGRATE['BACKUP_CALLABLE'] is {value!r}, but it must be the dotted path of a "
            "callable.",
            hint,
        )
    try:
        found = import_string(value)
    except Exception as exc:  # ImportError, or whatever the module raises on import
        raise SettingsProblem(
            "safemigrate.E031",
            f"SAFEMIGRATE['BACKUP_CALLABLE'] is {value!r}, which cannot be imported: "
            f"{type(exc).__name__}: {exc}.",
            hint,
        ) from None
    if not callable(found):
        raise SettingsProblem(
            "safemigrate.E031",
            f"SAFEMIGRATE['BACKUP_CALLABLE'] is {value!r}, which is a "
            f"{type(found).__name__}, not a callable.",
            hint,
        )
    return value


def parse_lock_wait_alert(value: Any) -> float | None:
    """``LOCK_WAIT_ALERT``: seconds of waiting for the lock before the alert; ``None`` or
    0 never alerts. Held to the range of ``LOCK_WAIT``: a wait cannot last longer."""
    if value is None or (not isinstance(value, bool) and value == 0):
        return None
    bounds = SECONDS["LOCK_WAIT"]
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not bounds.accepts(float(value))
    ):
        raise SettingsProblem(
            "safemigrate.E035",
            f"SAFEMIGRATE['LOCK_WAIT_ALERT'] is {value!r}, but it must be a finite number of "
            f"seconds, {bounds.describe()}, or None (0 and None never alert).",
            "Set it to how long a deploy may wait for the migration lock before someone "
            "should hear of it, such as 30, or None to send no alert.",
        )
    return float(value)


FAIL_ON_CHOICES = ("risky", "destructive", "never")


def parse_fail_on(value: Any, what: str, *, check_id: str) -> Risk | None:
    """``"risky"`` / ``"destructive"`` → that risk; ``"never"`` → ``None``."""
    if value == "never":
        return None
    if value in ("risky", "destructive"):
        return Risk(value)
    raise SettingsProblem(
        check_id,
        f"{what} is {value!r}, but it must be one of "
        f"{', '.join(repr(c) for c in FAIL_ON_CHOICES)}.",
        "Use 'risky' to fail on anything that needs care, 'destructive' to fail only on "
        "data loss, or 'never' to report without failing.",
    )


REVIEW_RISKS = ("risky", "destructive")


def parse_review(value: Any) -> tuple[Risk | None, frozenset[Kind]]:
    """``REVIEW``: a risk (``"destructive"``, ``"risky"``), ``"never"``, or a list of risks
    and kinds, any of which needs a review: the lowest risk listed, and the kinds."""
    kinds = [kind.value for kind in Kind]
    if isinstance(value, str):
        return (
            parse_fail_on(value, "SAFEMIGRATE['REVIEW']", check_id="safemigrate.E015"),
            frozenset(),
        )
    allowed = (*REVIEW_RISKS, *kinds)
    if (
        not isinstance(value, list | tuple | set | frozenset)
        or not value
        or not all(isinstance(v, str) and v in allowed for v in value)
    ):
        raise SettingsProblem(
            "safemigrate.E015",
            f"SAFEMIGRATE['REVIEW'] is {value!r}, but it must be 'destructive', 'risky' or "
            f"'never', or a non-empty list of {', '.join(repr(a) for a in allowed)}.",
            "For example ['destructive', 'breaks-old-code'] asks for reviews of destructive "
            "migrations and of those that break the code still running during the deploy.",
        )
    risks = [Risk(v) for v in value if v in REVIEW_RISKS]
    lowest = min(risks, key=lambda r: r.rank) if risks else None
    return lowest, frozenset(Kind(v) for v in value if v in kinds)


def _parse_rules(value: Any) -> dict[str, Risk | None]:
    from django_safemigrate.analysis.registry import rules

    choices = ("safe", "risky", "destructive", "off")
    if not isinstance(value, Mapping):
        raise SettingsProblem(
            "safemigrate.E009",
            f"SAFEMIGRATE['RULES'] must be a dict of rule code to severity, not {value!r}.",
            "For example {'SM101': 'destructive', 'SM402': 'off'}.",
        )
    known = rules()
    parsed: dict[str, Risk | None] = {}
    for code, severity in value.items():
        if code not in known:
            raise SettingsProblem(
                "safemigrate.E009",
                f"SAFEMIGRATE['RULES'] names {code!r}, which is not a rule code.",
                "'python manage.py checkmigrations --list-rules' lists the codes.",
            )
        if severity not in choices:
            raise SettingsProblem(
                "safemigrate.E009",
                f"SAFEMIGRATE['RULES']['{code}'] is {severity!r}, but it must be one of "
                f"{', '.join(repr(c) for c in choices)}.",
                "Give the severity the rule should have in this project, or 'off'.",
            )
        parsed[code] = None if severity == "off" else Risk(severity)
    return parsed


@functools.cache
def get_settings() -> SafemigrateSettings:
    """The project's validated settings; raises :class:`InvalidSettings`."""
    return parse_settings(getattr(django_settings, "SAFEMIGRATE", None), django_settings.DATABASES)


def clear_cache(**kwargs: Any) -> None:
    """``setting_changed`` receiver: forget the cached settings when they change."""
    if kwargs.get("setting") in (None, "SAFEMIGRATE", "DATABASES"):
        get_settings.cache_clear()
