"""Is there a recent recovery point before a run drops data? (``SAFEMIGRATE['BACKUP_CHECK']``)

A destructive migration (a dropped column or table, a lossy type change) cannot be
undone by a rollback: the way back is a backup. Before the first destructive migration
of a run, and before anything of the plan is applied, the runner asks for the time of
the newest recovery point:

* the project's ``SAFEMIGRATE['BACKUP_CALLABLE']`` (``(connection) -> datetime | None``,
  for snapshots, ``pg_dump`` jobs or a managed service's API), or else
* PostgreSQL's WAL archive (``pg_stat_archiver``): continuous archiving on, a segment
  archived within ``BACKUP_MAX_AGE``, and no failure since the last success
  (https://www.postgresql.org/docs/current/monitoring-stats.html#MONITORING-PG-STAT-ARCHIVER-VIEW).

A base backup plus archived WAL is what point-in-time recovery needs
(https://www.postgresql.org/docs/current/continuous-archiving.html); the view only shows
that the archiving works, which is what can be checked from a database session.

``"warn"`` says what is wrong and goes on; ``"stop"`` applies nothing (exit 3, like the
other governance stops). The outcome is kept on the run's ledger row.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Callable, Sequence
from typing import Any

from django.db import DatabaseError
from django.utils import timezone
from django.utils.module_loading import import_string

from django_safemigrate.conf import SafemigrateSettings
from django_safemigrate.exceptions import Blocked

Key = tuple[str, str]


class NoRecoveryPoint(Blocked):
    """``BACKUP_CHECK = "stop"`` and no recent recovery point: nothing was applied."""


@dataclasses.dataclass(frozen=True)
class RecoveryPoint:
    """What the check found: ``problem`` is empty when a recent recovery point exists."""

    #: Where the answer came from ("BACKUP_CALLABLE myproject.backups.last", "pg_stat_archiver").
    source: str
    #: The recovery point in words, when there is one ("last archived WAL 12 minutes ago").
    found: str = ""
    #: What is wrong, in a sentence fragment ("WAL archiving is off (archive_mode = off)").
    problem: str = ""

    @property
    def ok(self) -> bool:
        return not self.problem


def describe_age(seconds: float) -> str:
    """``seconds`` in the largest whole unit: "3 days", "5 hours", "40 seconds"."""
    seconds = max(0.0, seconds)
    for unit, size in (("day", 86_400), ("hour", 3_600), ("minute", 60)):
        if seconds >= size:
            count = int(seconds // size)
            return f"{count} {unit}{'' if count == 1 else 's'}"
    count = int(seconds)
    return f"{count} second{'' if count == 1 else 's'}"


def _when(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def find_recovery_point(connection: Any, settings: SafemigrateSettings) -> RecoveryPoint:
    """Ask the project's callable, or ``pg_stat_archiver``, for the newest recovery point."""
    if settings.backup_callable:
        return _from_callable(connection, settings.backup_callable, settings.backup_max_age)
    return _from_archiver(connection, settings.backup_max_age)


def _too_old(age: float, max_age: float) -> str:
    return f"older than BACKUP_MAX_AGE ({describe_age(max_age)})" if age > max_age else ""


def _from_callable(connection: Any, path: str, max_age: float) -> RecoveryPoint:
    source = f"BACKUP_CALLABLE {path}"
    try:
        last = import_string(path)(connection)
    except Exception as exc:  # the project's code: whatever it raises is the answer
        return RecoveryPoint(source, problem=f"{path} raised {type(exc).__name__}: {exc}")
    if last is None:
        return RecoveryPoint(source, problem=f"{path} reported no recovery point (None)")
    if not isinstance(last, datetime.datetime):
        return RecoveryPoint(
            source,
            problem=f"{path} returned {last!r}, not a datetime (or None for no recovery point)",
        )
    if timezone.is_naive(last):
        last = timezone.make_aware(last)
    age = (timezone.now() - last).total_seconds()
    found = f"last recovery point {describe_age(age)} ago ({_when(last)})"
    if _too_old(age, max_age):
        return RecoveryPoint(source, found, f"{found}, {_too_old(age, max_age)}")
    return RecoveryPoint(source, found)


def _from_archiver(connection: Any, max_age: float) -> RecoveryPoint:
    source = "pg_stat_archiver"
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT current_setting('archive_mode'), last_archived_wal, "
                "last_archived_time, failed_count, last_failed_wal, last_failed_time, "
                "now() FROM pg_stat_archiver"
            )
            mode, wal, archived, failed_count, failed_wal, failed, now = cursor.fetchone()
    except DatabaseError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return RecoveryPoint(source, problem=f"pg_stat_archiver could not be read: {first}")
    if mode == "off":
        return RecoveryPoint(source, problem="WAL archiving is off (archive_mode = off)")
    if failed is not None and (archived is None or failed > archived):
        since = f"since {_when(archived)}" if archived else "and has never succeeded"
        return RecoveryPoint(
            source,
            problem=f"archiving failing {since}: {failed_count} failure(s), the last for WAL "
            f"{failed_wal} at {_when(failed)}; see archive_command and the server log",
        )
    if archived is None:
        return RecoveryPoint(
            source, problem=f"no WAL segment has been archived yet (archive_mode = {mode})"
        )
    age = (now - archived).total_seconds()
    found = f"last archived WAL {describe_age(age)} ago ({wal} at {_when(archived)})"
    if _too_old(age, max_age):
        return RecoveryPoint(source, found, f"{found}, {_too_old(age, max_age)}")
    return RecoveryPoint(source, found)


def check_before_destroying(
    connection: Any,
    settings: SafemigrateSettings,
    destructive: Sequence[Key],
    *,
    record: Callable[[str], None],
    warn: Callable[[str], None],
) -> None:
    """Run the check for a plan whose ``destructive`` migrations are about to be applied.

    Nothing happens when the check is off or the plan destroys nothing. The outcome is
    passed to ``record`` (the ledger); ``"warn"`` passes the message to ``warn``;
    ``"stop"`` raises :class:`NoRecoveryPoint`.
    """
    if settings.backup_check == "off" or not destructive:
        return
    point = find_recovery_point(connection, settings)
    names = ", ".join(".".join(key) for key in destructive)
    if point.ok:
        record(f"passed ({point.source}): {point.found}")
        return
    what = (
        f"No recent recovery point before the destructive migration(s) {names}: "
        f"{point.problem} (checked through {point.source})."
    )
    if settings.backup_check == "warn":
        record(f"warned ({point.source}): {point.problem}")
        warn(
            f"Warning: {what} Going on because SAFEMIGRATE['BACKUP_CHECK'] is 'warn'; data "
            "these migrations drop can only come back from a backup."
        )
        return
    record(f"stopped ({point.source}): {point.problem}")
    raise NoRecoveryPoint(
        f"{what} Nothing was applied: SAFEMIGRATE['BACKUP_CHECK'] is 'stop', and what these "
        "migrations drop could only come back from a backup. Take a backup (or fix WAL "
        "archiving, or the BACKUP_CALLABLE), then run again; BACKUP_MAX_AGE sets how old the "
        "newest recovery point may be."
    )


def destructive_in_plan(
    connection: Any,
    loader: Any,
    plan: Sequence[tuple[Any, bool]],
    settings: SafemigrateSettings,
    reports: dict[Key, Any] | None = None,
) -> list[Key]:
    """The migrations ``plan`` applies whose risk is destructive, in plan order.

    ``reports`` are the gate's, when it judged the plan; what it did not judge (a plan
    let through without the gate: plain ``migrate``, the older package's ``"disabled"``)
    is analysed here, only when the check is on.
    """
    from django_safemigrate.enums import Risk

    forward = [(m.app_label, m.name) for m, backwards in plan if not backwards]
    known = dict(reports or {})
    missing = [key for key in forward if key not in known]
    if missing:
        from django_safemigrate.analysis.analyzer import AnalysisOptions, analyse
        from django_safemigrate.analysis.database import server_major, table_sizes

        options = AnalysisOptions(
            pg_version=server_major(connection),
            small_table_rows=settings.small_table_rows,
            severity_overrides=dict(settings.rules),
            infer_phase=settings.infer_phase,
            online=settings.online,
        )
        sizes = table_sizes(connection)
        analysed = analyse(
            loader, missing, connection, options, applied=set(), table_info=sizes.get, live=True
        )
        for report in analysed:
            known[(report.app_label, report.name)] = report
    return [key for key in forward if key in known and known[key].risk is Risk.DESTRUCTIVE]
