"""Lock retries: the attempts a step gets after lock timeouts and deadlocks.

A request for a strong lock (``ALTER TABLE`` wants ACCESS EXCLUSIVE) that has to
wait joins the table's lock queue, and every query that arrives after it waits
behind it, reads included, until it is granted or gives up. So a strong-lock
step waits briefly (``lock_timeout``, ``SET LOCAL`` in its transaction), and when
the wait ends in a lock timeout (SQLSTATE 55P03) or a deadlock (40P01) its
transaction is rolled back whole, the queue moves on, and the step tries again
after a sleep, under the next pair of the schedule (``SAFEMIGRATE['LOCK_RETRIES']``).
When the schedule runs out, the run stops, or (``"wait"``) one last attempt waits
without a lock timeout.

A step that runs outside a transaction is tried again only when its statement is
safe to run twice (:func:`safe_to_run_again`); Python outside a transaction never
is: what it committed before the error stays.

https://www.postgresql.org/docs/current/explicit-locking.html
https://www.postgresql.org/docs/current/runtime-config-client.html#GUC-LOCK-TIMEOUT
"""

from __future__ import annotations

import dataclasses
from typing import Any

from django_safemigrate.conf import LockAttempt
from django_safemigrate.enums import LockRetriesExhausted
from django_safemigrate.execution.preflight import find_blockers
from django_safemigrate.execution.steps import Step, StepKind
from django_safemigrate.sql import parse


@dataclasses.dataclass(frozen=True)
class Attempt:
    """One attempt of a step: its number, of how many, and its timing."""

    number: int
    count: int
    #: Seconds; 0: no lock timeout (the final attempt of ``"wait"``).
    lock_timeout: float
    #: Seconds to sleep after this attempt failed on a lock timeout or a deadlock.
    sleep: float

    @property
    def last(self) -> bool:
        return self.number == self.count


@dataclasses.dataclass(frozen=True)
class LockRetries:
    """A schedule of (lock_timeout, sleep) pairs and what happens when it runs out."""

    schedule: tuple[LockAttempt, ...]
    exhausted: LockRetriesExhausted = LockRetriesExhausted.STOP

    @property
    def waits_at_the_end(self) -> bool:
        """Whether the last attempt has no lock timeout (added by ``"wait"``, or the
        schedule's own final pair)."""
        return self.exhausted is LockRetriesExhausted.WAIT or self.schedule[-1][0] == 0

    def attempts(self, *, retried: bool = True) -> list[Attempt]:
        """The attempts of a step; ``retried=False``: a step that cannot run twice gets
        one, under the schedule's longest lock timeout, or none when the schedule ends
        waiting (it is the last attempt as much as the first)."""
        if not retried:
            once = 0.0 if self.waits_at_the_end else max(lock for lock, _ in self.schedule)
            return [Attempt(1, 1, once, 0.0)]
        pairs = list(self.schedule)
        if self.exhausted is LockRetriesExhausted.WAIT and pairs[-1][0] != 0:
            pairs.append((0.0, 0.0))
        return [Attempt(i, len(pairs), lock, sleep) for i, (lock, sleep) in enumerate(pairs, 1)]

    def describe(self) -> str:
        """``lock_timeout 0.1s to 2s over 50 attempts`` (for ``--plan`` and reviews)."""
        attempts = self.attempts()
        bounded = [a.lock_timeout for a in attempts if a.lock_timeout]
        if not bounded:
            return "no lock_timeout"
        low, high = min(bounded), max(bounded)
        text = (
            f"lock_timeout {seconds(low)}"
            if low == high
            else (f"lock_timeout {seconds(low)} to {seconds(high)}")
        )
        if len(bounded) > 1:
            text += f" over {len(bounded)} attempts"
        if len(bounded) < len(attempts):
            text += ", then one without"
        return text


def seconds(value: float) -> str:
    """``0.05s``, ``2s``, ``1.5s``: a duration of the schedule as it was written."""
    return f"{value:g}s"


#: Statements PostgreSQL runs in one transaction of their own, or that are harmless to
#: repeat: after a failure nothing of them stays, or running them again finishes them.
_REPEATABLE = (
    "VacuumStmt",  # VACUUM (table after table, each its own transaction): idempotent
    "AlterEnumStmt",  # ADD VALUE before PostgreSQL 12: one transaction
    "CreatedbStmt",
    "DropdbStmt",
    "CreateTableSpaceStmt",
    "DropTableSpaceStmt",
    "AlterSystemStmt",
    "AlterDatabaseStmt",
    "DiscardStmt",
)


def safe_to_run_again(sql: str) -> bool:
    """Whether a statement that ran alone, in autocommit, may run again after it failed.

    * ``CREATE INDEX CONCURRENTLY`` of a named index: a failed build leaves an INVALID
      index, which the runner drops before building again (and a valid one is kept).
    * ``DROP INDEX CONCURRENTLY``: an interrupted drop leaves the index INVALID; dropping
      it again finishes the job.
    * ``REINDEX``/``CLUSTER`` without ``CONCURRENTLY``, ``VACUUM`` and the statements that
      run in one transaction: nothing of a failed one stays, or it is idempotent.

    Not safe: ``REINDEX CONCURRENTLY`` (a failed one leaves an INVALID ``…_ccnew`` index,
    and another run would add a ``…_ccnew1``), ``DETACH PARTITION … CONCURRENTLY`` (an
    interrupted one must be finished with ``FINALIZE``), ``DO`` blocks and ``CALL`` (what
    they committed stays), subscriptions (a replication slot on the publisher).
    """
    from pglast import ast

    from django_safemigrate.transactions import refuses_transaction

    statements = parse(sql)
    if len(statements) != 1 or statements[0].tree is None:
        return False
    node = statements[0].tree
    if isinstance(node, ast.IndexStmt):
        return bool(node.concurrent and node.idxname)
    if isinstance(node, ast.DropStmt):
        return True
    if isinstance(node, ast.ReindexStmt):
        # Read as the step planner reads it (the version only matters to ADD VALUE).
        return refuses_transaction(node, 12) != "REINDEX CONCURRENTLY"
    if isinstance(node, ast.ClusterStmt):
        return True
    return type(node).__name__ in _REPEATABLE


def describe_holders(connection: Any, tables: list[str], limit: int = 2) -> str:
    """Who holds locks on ``tables`` now, oldest transaction first: what a lock
    timeout most likely waited for (one catalog query, after the attempt failed).

    ``""`` when nobody does any more, or the tables are not known.
    """
    if not tables:
        return ""
    holders: dict[int, str] = {}
    for blocker in find_blockers(connection, tables, 0):
        if not blocker.granted or blocker.pid in holders:
            continue
        state = blocker.state or "unknown state"
        app = f"'{blocker.application}', " if blocker.application else ""
        holders[blocker.pid] = (
            f"pid {blocker.pid} ({app}{state}, transaction open {blocker.age:.1f}s, "
            f"{blocker.mode} on {blocker.table})"
        )
    if not holders:
        return ""
    shown = list(holders.values())[:limit]
    more = len(holders) - len(shown)
    return ", ".join(shown) + (f" and {more} more" if more else "")


def not_retried(step: Step) -> str:
    """Why ``step`` gets one attempt only, as a clause ("" when it may be tried again)."""
    if step.kind is StepKind.TRANSACTIONAL:
        return ""
    if step.kind is StepKind.NON_TRANSACTIONAL:
        statements = [sql for part in step.parts for sql in part.statements or ()]
        if statements and all(safe_to_run_again(sql) for sql in statements):
            return ""
        return (
            "it ran outside a transaction, and running its statement again after a failure "
            "is not safe"
        )
    return "it ran outside a transaction, and what it committed before the error stays"


def attempt_line(
    label: str,
    attempt: Attempt,
    *,
    following: Attempt,
    what: str,
    holders: str,
    transactional: bool,
) -> str:
    """The stderr line of a failed attempt that will be tried again: the step, the
    attempt, its lock timeout, who held locks on its tables, the next sleep."""
    line = f"    {label}: {what} on attempt {attempt.number} of {attempt.count}"
    if transactional:
        line += f" (lock_timeout {seconds(attempt.lock_timeout)})"
    if holders:
        line += f", waiting behind {holders}"
    line += f"; {'rolled back; ' if transactional else ''}next attempt in {seconds(attempt.sleep)}"
    if transactional:
        line += (
            f" with lock_timeout {seconds(following.lock_timeout)}"
            if following.lock_timeout
            else " without lock_timeout (the schedule is exhausted, and "
            "SAFEMIGRATE['LOCK_RETRIES_EXHAUSTED'] is 'wait')"
        )
    return line


def failed_attempts(attempt: Attempt, failed: list[str], elapsed: float, refused: str) -> str:
    """How the attempts of a step that failed for good went, in sentences ("" when it
    failed on its only attempt for a reason retries have nothing to do with).

    ``failed``: what each attempt hit, for the attempts that hit a lock timeout or a
    deadlock (the last one included when it did).
    """
    if len(failed) < attempt.number:
        if not failed:
            return ""
        return (
            f"It failed on attempt {attempt.number} of {attempt.count}, after "
            f"{_counted(failed)} ({elapsed:.1f}s)."
        )
    if refused:
        return f"It hit a {failed[0]} and was not tried again: {refused}."
    if attempt.count == 1:
        told = f"It hit a {failed[0]} on its only attempt ({elapsed:.1f}s)."
    else:
        told = (
            f"Each of its {attempt.count} attempts over {elapsed:.1f}s failed "
            f"({_counted(failed)}): something held a conflicting lock on its tables all "
            "that time, and each attempt gave up its place in the lock queue rather than "
            "keep the queries behind it waiting."
        )
    if attempt.lock_timeout:
        told += (
            " Find what holds locks on those tables (pg_locks, pg_stat_activity) or run "
            "again at a quieter time; SAFEMIGRATE['LOCK_RETRIES_EXHAUSTED'] = 'wait' "
            "ends the schedule with an attempt that waits for the lock."
        )
    return told


def _counted(failed: list[str]) -> str:
    """``3 lock timeouts and 1 deadlock``."""
    counts = {what: failed.count(what) for what in dict.fromkeys(failed)}
    return " and ".join(f"{n} {what}{'s' if n != 1 else ''}" for what, n in counts.items())
