"""What the online rewrite produces: the steps one statement becomes.

A statement Django's schema editor emits for a table that already exists (``CREATE
INDEX``, ``ADD CONSTRAINT … CHECK``, ``SET NOT NULL``, ``ALTER COLUMN … TYPE``…) can take
a lock that stops the table's traffic for as long as a scan, a build or a rewrite lasts.
Its online form does the same work in several steps, each one either a short transaction
or a single statement that runs alone and takes only weak locks (``CONCURRENTLY``,
``VALIDATE CONSTRAINT``). The step planner (:mod:`django_safemigrate.execution.steps`)
turns each :class:`OnlineStep` into a step of its own, so a strong lock is never held
while a weak-lock statement of the same form runs.
"""

from __future__ import annotations

import dataclasses

from django_safemigrate.sql import Statement

#: What a backfill ``DO`` block runs after each committed batch: a pause as long as the
#: batch took (``safemigrate_batch_began`` is set when the batch begins), so the backfill
#: takes at most half of what the server gives to one session and production queries keep
#: their latency.
PAUSE = "PERFORM pg_sleep(extract(epoch FROM clock_timestamp() - safemigrate_batch_began));"


@dataclasses.dataclass(frozen=True)
class OnlineStep:
    """One step of an online form."""

    #: The statements, in order (one, when the step runs alone).
    statements: tuple[str, ...]
    #: ``True``: the statements run in one short transaction. ``False``: a single
    #: statement PostgreSQL refuses inside a transaction block, run alone in autocommit.
    transactional: bool
    #: What the step does, for people ("build the unique index concurrently").
    purpose: str


@dataclasses.dataclass(frozen=True)
class OnlineForm:
    """How one statement runs online."""

    original: Statement
    steps: tuple[OnlineStep, ...]
    #: The rule codes whose finding on ``original`` the online form answers.
    resolves: frozenset[str]
    #: What the deploy should know about it ("the database default stays until …").
    note: str = ""
    #: The statement as rendered, when ``original`` is one command split out of it.
    source: Statement | None = None

    @property
    def source_sql(self) -> str:
        return (self.source or self.original).sql


@dataclasses.dataclass(frozen=True)
class NotOnline:
    """A statement with no safe online form here: it needs a review to run as it is."""

    original: Statement
    reason: str
