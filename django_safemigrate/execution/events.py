"""Structured events of a governed run, through Python's logging.

Every run of ``safemigrate`` and of the ``migrate`` override logs what it does to the
logger ``django_safemigrate.events``: one log record per event, at INFO, or WARNING
for what someone should look at (a blocked or failed run, a failed step, a lost lock,
a lock wait past ``SAFEMIGRATE['LOCK_WAIT_ALERT']``, a lock not taken in time).

Each record carries the event's stable name in ``record.event`` and its fields in one
dict, ``record.safemigrate`` (a dict rather than flat attributes: a field named like
one of ``LogRecord``'s own attributes could not be set through ``extra``). Every
event's fields include ``command``, ``database``, ``host``, ``pid`` and ``run_id`` (the
ledger's run row, ``None`` until it exists). :class:`django_safemigrate.logging.JSONFormatter`
writes them as one JSON object a line (README, "Events and status").

This module is the only place that builds events: the lock, the runner and the
commands call the methods of the run's :class:`RunEvents` (``Ledger.events``).
"""

from __future__ import annotations

import logging
import os
import socket
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from django_safemigrate.execution.lock import Holder

LOGGER = logging.getLogger("django_safemigrate.events")
# A library's logger: nothing is shown until the project configures a handler (Python's
# last-resort handler would print the warnings to stderr, beside the command's own
# one-paragraph messages).
LOGGER.addHandler(logging.NullHandler())

#: How often a waiting run logs ``lock.wait`` again (as often as it says so on stderr).
REPORT_EVERY = 15.0


def _holder(holder: Holder | None) -> dict[str, Any] | None:
    return holder.as_dict() if holder is not None else None


def _first_line(text: str) -> str:
    text = text.strip()
    return text.splitlines()[0] if text else ""


class RunEvents:
    """The events of one run; one object per :class:`~.ledger.Ledger`."""

    def __init__(self, *, command: str, database: str) -> None:
        self.command = command
        self.database = database
        self.run_id: int | None = None
        self.started = time.monotonic()
        #: Whether ``run.blocked`` was logged (by the gate, with the migrations it held).
        self.blocked_sent = False

    def emit(self, event: str, message: str, level: int = logging.INFO, **fields: Any) -> None:
        """Log ``event`` with ``fields`` (and the run's own) on :data:`LOGGER`."""
        if not LOGGER.isEnabledFor(level):
            return
        data = {
            "command": self.command,
            "database": self.database,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "run_id": self.run_id,
            **fields,
        }
        LOGGER.log(level, message, extra={"event": event, "safemigrate": data})

    # -- the run -------------------------------------------------------------------------

    def run_start(self, *, argv: str, lock_wait: float) -> None:
        self.started = time.monotonic()
        self.emit(
            "run.start",
            f"{self.command} started on database '{self.database}'",
            argv=argv,
            lock_wait=lock_wait,
        )

    def run_blocked(self, migrations: list[dict[str, Any]], message: str = "") -> None:
        """``migrations``: ``{"migration": "app.name", "review": …, "reasons": […]}``."""
        self.blocked_sent = True
        names = ", ".join(m["migration"] for m in migrations) or _first_line(message)
        self.emit(
            "run.blocked",
            f"{self.command} was blocked by governance: {names}",
            logging.WARNING,
            migrations=migrations,
            error=message,
        )

    def run_end(self, outcome: str, exit_code: int, error: str = "") -> None:
        """``run.failed`` first when the run failed, then ``run.end``."""
        duration = round(time.monotonic() - self.started, 3)
        if outcome == "blocked" and not self.blocked_sent:
            self.run_blocked([], error)
        if outcome == "failed":
            self.emit(
                "run.failed",
                f"{self.command} failed: {_first_line(error)}",
                logging.WARNING,
                error=error,
                exit_code=exit_code,
            )
        quiet = outcome in ("applied", "unapplied", "nothing_to_do")
        self.emit(
            "run.end",
            f"{self.command} ended: {outcome} (exit {exit_code}) after {duration:g}s",
            logging.INFO if quiet else logging.WARNING,
            outcome=outcome,
            exit_code=exit_code,
            duration=duration,
            error=error,
        )

    # -- the lock ------------------------------------------------------------------------

    def lock_watch(self, alert_after: float | None, sender: type) -> LockWaitWatch:
        return LockWaitWatch(self, alert_after, sender)

    def lock_taken(self, waited: float, backend_pid: int | None) -> None:
        self.emit(
            "lock.taken",
            f"took the migration lock after {waited:.1f}s",
            waited=round(waited, 3),
            backend_pid=backend_pid,
        )

    def lock_lost(self, error: str) -> None:
        self.emit("lock.lost", _first_line(error), logging.WARNING, error=error)

    # -- steps ---------------------------------------------------------------------------

    def step_start(self, **fields: Any) -> None:
        self.emit("step.start", f"{_step(fields)} started", **fields)

    def step_end(self, *, outcome: str, duration: float, **fields: Any) -> None:
        self.emit(
            "step.end",
            f"{_step(fields)} {outcome} ({duration:.2f}s)",
            outcome=outcome,
            duration=round(duration, 3),
            **fields,
        )

    def step_retry(
        self,
        *,
        attempt: int,
        attempts: int,
        reason: str,
        backoff: float,
        next_lock_timeout: float,
        **fields: Any,
    ) -> None:
        self.emit(
            "step.retry",
            f"{_step(fields)} attempt {attempt}/{attempts} failed on a {reason}; trying again "
            f"in {backoff:g}s",
            attempt=attempt,
            attempts=attempts,
            reason=reason,
            backoff=backoff,
            next_lock_timeout=next_lock_timeout,
            **fields,
        )

    def step_failed(self, *, error: str, duration: float, **fields: Any) -> None:
        self.emit(
            "step.failed",
            f"{_step(fields)} failed: {_first_line(error)}",
            logging.WARNING,
            error=error,
            duration=round(duration, 3),
            **fields,
        )


def _step(fields: dict[str, Any]) -> str:
    return f"{fields.get('migration')} step {fields.get('step')}/{fields.get('step_count')}"


class LockWaitWatch:
    """Called after every attempt that found the lock taken: ``lock.wait`` at the first
    and every :data:`REPORT_EVERY` seconds, and once past ``alert_after`` seconds the
    ``lock.wait_alert`` event and the ``lock_wait_alert`` signal."""

    def __init__(self, events: RunEvents, alert_after: float | None, sender: type) -> None:
        self.events = events
        self.alert_after = alert_after
        self.sender = sender
        self.started = time.monotonic()
        self.next_report = 0.0
        self.alerted = False

    def __call__(self, holder: Holder | None, waited: float) -> None:
        if waited >= self.next_report:
            first = self.next_report == 0.0
            who = holder.describe() if holder is not None else "a session that just released it"
            self.events.emit(
                "lock.wait",
                f"{'waiting' if first else 'still waiting'} for the migration lock "
                f"({waited:.1f}s): held by {who}",
                waited=round(waited, 3),
                holder=_holder(holder),
            )
            self.next_report = waited + REPORT_EVERY
        if self.alert_after and waited >= self.alert_after and not self.alerted:
            self.alerted = True
            self._alert(holder, waited)

    def _alert(self, holder: Holder | None, waited: float) -> None:
        from django_safemigrate.governance.signals import lock_wait_alert

        threshold = self.alert_after
        self.events.emit(
            "lock.wait_alert",
            f"waited {waited:.1f}s for the migration lock, longer than {threshold:g}s",
            logging.WARNING,
            waited=round(waited, 3),
            threshold=threshold,
            holder=_holder(holder),
        )
        # A receiver that fails (a pager that cannot be reached) must not stop the deploy.
        answers = lock_wait_alert.send_robust(
            sender=self.sender,
            database=self.events.database,
            command=self.events.command,
            waited=waited,
            threshold=threshold,
            holder=_holder(holder),
        )
        for receiver, answer in answers:
            if isinstance(answer, Exception):
                LOGGER.warning(
                    "a lock_wait_alert receiver (%s) failed: %s",
                    getattr(receiver, "__qualname__", receiver),
                    answer,
                    exc_info=(type(answer), answer, answer.__traceback__),
                )

    def waited(self) -> float:
        return time.monotonic() - self.started
