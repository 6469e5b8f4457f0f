"""``checkmigrations --roundtrip``: every reverse must give back the schema it started from.

On a throwaway database (:mod:`~django_safemigrate.schema.ephemeral`) the migrations the
selected ones build on are applied first (the starting point), then the selected ones,
one at a time, the schema read from the catalogs before and after each. Then they are
unapplied one at a time, newest first: after each reverse the schema must be the one read
before that migration was applied. Then they are applied again: each must give the schema
its first apply gave. A migration that cannot be unapplied (``IrreversibleError``) stops
the walk back there; the ones already unapplied are still applied again.

A reverse that leaves something behind makes the next reverse start from a schema that is
already off; what the next one then differs by is reported only where it adds to that, so
each difference is named on the migration that made it. Applying again is only judged
when every reverse restored its schema: from a wrong starting point, its differences would
be the earlier ones'.

Migrations run through Django's own executor (no lock, no ledger, no online rewrite): the
schema a migration and its reverse produce is what is checked, not how a deploy runs it.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable

from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.migrations import Migration
from django.db.migrations.exceptions import IrreversibleError
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.state import ProjectState

from django_safemigrate.schema.catalog import Schema
from django_safemigrate.schema.compare import Difference, compare
from django_safemigrate.schema.ephemeral import ephemeral_database
from django_safemigrate.schema.snapshot import read_migrated_schema

Key = tuple[str, str]


class Applied(enum.StrEnum):
    APPLIED = "applied"
    FAILED = "failed"
    NOT_REACHED = "not_reached"


class Reverse(enum.StrEnum):
    RESTORED = "restored"
    NOT_RESTORED = "not_restored"
    IRREVERSIBLE = "irreversible"
    FAILED = "failed"
    NOT_REACHED = "not_reached"


class Reapply(enum.StrEnum):
    SAME = "same"
    DIFFERENT = "different"
    FAILED = "failed"
    #: Not judged: an earlier reverse left the schema off.
    SKIPPED = "skipped"
    NOT_REACHED = "not_reached"


@dataclasses.dataclass(frozen=True)
class MigrationRoundTrip:
    """What happened to one migration of the walk."""

    app_label: str
    name: str
    path: str | None
    #: Selected by the command's arguments (others are walked because selected ones
    #: depend on them).
    selected: bool
    applied: Applied = Applied.NOT_REACHED
    reverse: Reverse = Reverse.NOT_REACHED
    reapply: Reapply = Reapply.NOT_REACHED
    #: The exception of the apply, reverse or reapply that failed, in one line.
    error: str | None = None
    #: What differs after its reverse (expected: the schema before it was applied).
    reverse_differences: tuple[Difference, ...] = ()
    #: What differs after applying it again (expected: the schema its first apply gave).
    reapply_differences: tuple[Difference, ...] = ()

    @property
    def label(self) -> str:
        return f"{self.app_label}.{self.name}"

    @property
    def ok(self) -> bool:
        return (
            self.applied is not Applied.FAILED
            and self.reverse in (Reverse.RESTORED, Reverse.NOT_REACHED)
            and self.reapply in (Reapply.SAME, Reapply.NOT_REACHED, Reapply.SKIPPED)
        )


@dataclasses.dataclass(frozen=True)
class RoundTripResult:
    #: How many migrations were applied first, as the starting point.
    starting_point: int
    migrations: tuple[MigrationRoundTrip, ...]

    @property
    def failed(self) -> bool:
        return not all(m.ok for m in self.migrations)


def walk_order(loader: MigrationLoader, selected: set[Key]) -> tuple[list[Key], list[Key]]:
    """The starting point and the migrations to walk, each in the order they apply.

    The walk is every migration the selected ones need that is not older than all of
    them: the selected ones, and those between (a migration that depends on a selected
    one, and that a selected one depends on). The starting point is the rest of what they
    need.
    """
    graph = loader.graph
    needed: set[Key] = set()
    after_selected: set[Key] = set()
    for key in selected:
        needed.update(graph.forwards_plan(key))
        after_selected.update(graph.backwards_plan(key))
    order = [key for key in full_order(loader) if key in needed]
    start = [key for key in order if key not in after_selected]
    walk = [key for key in order if key in after_selected]
    return start, walk


def full_order(loader: MigrationLoader) -> list[Key]:
    seen: set[Key] = set()
    order: list[Key] = []
    for leaf in sorted(loader.graph.leaf_nodes()):
        for key in loader.graph.forwards_plan(leaf):
            if key not in seen:
                seen.add(key)
                order.append(key)
    return order


def run_roundtrip(
    connection: BaseDatabaseWrapper,
    selected: set[Key],
    paths: dict[Key, str],
    on_progress: Callable[[str], None] = lambda line: None,
) -> RoundTripResult:
    """Walk ``selected`` forward, back and forward again on a throwaway database beside
    ``connection``'s."""
    with ephemeral_database(connection, "roundtrip"):
        scratch = connections[connection.alias]
        executor = MigrationExecutor(scratch)
        start, walk = walk_order(executor.loader, selected)
        on_progress(
            f"Round trip on a throwaway database: {len(start)} migration(s) to start from, "
            f"{len(walk)} to walk."
        )
        walker = _Walker(executor, scratch, on_progress)
        state = walker.start(start)
        results = [
            MigrationRoundTrip(k[0], k[1], paths.get(k), selected=k in selected) for k in walk
        ]
        return RoundTripResult(len(start), tuple(walker.walk(walk, state, results)))


class _Walker:
    def __init__(
        self,
        executor: MigrationExecutor,
        connection: BaseDatabaseWrapper,
        on_progress: Callable[[str], None],
    ) -> None:
        self.executor = executor
        self.connection = connection
        self.on_progress = on_progress

    def migration(self, key: Key) -> Migration:
        return self.executor.loader.graph.nodes[key]  # type: ignore[no-any-return]

    def schema(self) -> Schema:
        return read_migrated_schema(self.connection)

    def start(self, keys: list[Key]) -> ProjectState:
        # django_migrations exists from the start, so no walk back ends without it.
        self.executor.recorder.ensure_schema()
        state: ProjectState = ProjectState(real_apps=self.executor.loader.unmigrated_apps)
        for key in keys:
            state = self.executor.apply_migration(state, self.migration(key))
        return state

    def walk(
        self, keys: list[Key], state: ProjectState, results: list[MigrationRoundTrip]
    ) -> list[MigrationRoundTrip]:
        # Forward: the schema before each migration (snapshots[i]) and after it (i + 1).
        snapshots = [self.schema()]
        states: list[ProjectState] = []
        for index, key in enumerate(keys):
            states.append(state.clone())
            try:
                state = self.executor.apply_migration(state, self.migration(key))
            except Exception as exc:
                results[index] = dataclasses.replace(
                    results[index], applied=Applied.FAILED, error=_one_line(exc)
                )
                break
            results[index] = dataclasses.replace(results[index], applied=Applied.APPLIED)
            snapshots.append(self.schema())
        applied = len(snapshots) - 1

        # Back, newest first.
        carried: set[str] = set()
        reversed_from = applied
        for index in reversed(range(applied)):
            key = keys[index]
            self.on_progress(f"  unapplying {key[0]}.{key[1]}")
            try:
                self.executor.unapply_migration(states[index].clone(), self.migration(key))
            except IrreversibleError:
                results[index] = dataclasses.replace(
                    results[index],
                    reverse=Reverse.IRREVERSIBLE,
                    error=_irreversible(self.migration(key)),
                )
                break
            except Exception as exc:
                results[index] = dataclasses.replace(
                    results[index], reverse=Reverse.FAILED, error=_one_line(exc)
                )
                break
            reversed_from = index
            found, _ = compare(snapshots[index], self.schema())
            new = tuple(d for d in found if _identity(d) not in carried)
            carried = {_identity(d) for d in found}
            results[index] = dataclasses.replace(
                results[index],
                reverse=Reverse.NOT_RESTORED if new else Reverse.RESTORED,
                reverse_differences=new,
            )

        # Forward again, from where the walk back stopped.
        judged = not any(r.reverse in (Reverse.NOT_RESTORED, Reverse.FAILED) for r in results)
        for index in range(reversed_from, applied):
            if not judged:
                results[index] = dataclasses.replace(results[index], reapply=Reapply.SKIPPED)
                continue
            key = keys[index]
            try:
                self.executor.apply_migration(states[index].clone(), self.migration(key))
            except Exception as exc:
                results[index] = dataclasses.replace(
                    results[index], reapply=Reapply.FAILED, error=_one_line(exc)
                )
                judged = False
                continue
            found, _ = compare(snapshots[index + 1], self.schema())
            results[index] = dataclasses.replace(
                results[index],
                reapply=Reapply.DIFFERENT if found else Reapply.SAME,
                reapply_differences=tuple(found),
            )
            judged = not found
        return results


def _irreversible(migration: Migration) -> str:
    """Which operations cannot be unapplied (Django's message shows them by ``repr``)."""
    names = [
        f"operation {index} ({type(operation).__name__})"
        for index, operation in enumerate(migration.operations, start=1)
        if not operation.reversible
    ]
    return f"{', '.join(names)} cannot be unapplied"


def _identity(difference: Difference) -> str:
    return repr(difference.as_json())


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
