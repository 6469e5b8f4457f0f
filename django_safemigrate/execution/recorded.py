"""What ``django_migrations`` holds, read once per governed run instead of once per reader.

A governed run asks the recorded migrations many times before it applies anything: the
ledger (are its own tables there?), the history check, the checksum check, the gate's
graph, Django's ``migrate`` (its graph, its history check, its table check). Each asks
with a new ``MigrationRecorder``, and each of those checks that the table exists first;
on django-tenants' backend a table check is four statements. Over a fleet of schemas
that is most of a run's round trips.

While the run holds the migration lock nothing else records migrations in its schema, so
the first answer holds until the run itself writes: :func:`applied_snapshot` keeps it
for one connection, and :class:`RunRecorder` answers from it. What the answer can rely on:

- it is read in autocommit, never inside a transaction (which could still roll back
  what it sees), and a read inside a transaction neither uses nor keeps it;
- every write through a :class:`RunRecorder`, and every write the run makes itself
  (:func:`forget_applied`), drops it before writing, so the next read is a new one;
- it belongs to one connection object and ends with the run (:func:`applied_snapshot`
  is entered once the lock is held and left before it is released).
"""

from __future__ import annotations

import contextlib
import dataclasses
import weakref
from collections.abc import Iterator
from typing import Any

from django.db.migrations.recorder import MigrationRecorder

from django_safemigrate import djangocompat

Key = tuple[str, str]


@dataclasses.dataclass
class _Snapshot:
    has_table: bool = False
    applied: dict[Key, Any] | None = None


_ACTIVE: weakref.WeakKeyDictionary[Any, _Snapshot] = weakref.WeakKeyDictionary()


def _wrapper(connection: Any) -> Any:
    """The connection object itself (``django.db.connection`` is a proxy to it)."""
    if type(connection).__hash__ is None:
        from django.db import connections

        return connections[connection.alias]
    return connection


@contextlib.contextmanager
def applied_snapshot(connection: Any) -> Iterator[None]:
    """Within the block, recorders of ``connection`` (:class:`RunRecorder`) share one read."""
    connection = _wrapper(connection)
    previous = _ACTIVE.get(connection)
    _ACTIVE[connection] = _Snapshot()
    try:
        yield
    finally:
        if previous is None:
            _ACTIVE.pop(connection, None)
        else:
            _ACTIVE[connection] = previous


def snapshot_active(connection: Any) -> bool:
    return _wrapper(connection) in _ACTIVE


def forget_applied(connection: Any) -> None:
    """The run is about to write ``django_migrations`` itself: the next read is a new one."""
    snapshot = _ACTIVE.get(_wrapper(connection))
    if snapshot is not None:
        snapshot.applied = None


class RunRecorder(MigrationRecorder):
    """Django's recorder, answering from the run's snapshot of its connection, if any
    (outside a governed run, Django's recorder as it is)."""

    def _snapshot(self) -> _Snapshot | None:
        snapshot = _ACTIVE.get(_wrapper(self.connection))
        if snapshot is None or self.connection.in_atomic_block:
            return None
        return snapshot

    def has_table(self) -> bool:
        snapshot = self._snapshot()
        if snapshot is not None and snapshot.has_table:
            return True
        found = bool(super().has_table())
        if snapshot is not None:
            snapshot.has_table = found
        return found

    def applied_migrations(self) -> dict[Key, Any]:
        snapshot = self._snapshot()
        if snapshot is not None and snapshot.applied is not None:
            return dict(snapshot.applied)
        applied: dict[Key, Any] = super().applied_migrations()
        if snapshot is not None:
            snapshot.applied = dict(applied)
        return applied

    def record_applied(self, app: str, name: str) -> None:
        forget_applied(self.connection)
        super().record_applied(app, name)

    def record_unapplied(self, app: str, name: str) -> None:
        forget_applied(self.connection)
        super().record_unapplied(app, name)

    def flush(self) -> None:
        forget_applied(self.connection)
        super().flush()


def check_consistent_history(loader: Any, connection: Any) -> None:
    """Django's history check (``MigrationLoader.check_consistent_history``) on the run's
    read of the applied migrations (:class:`RunRecorder`), not a read of its own."""
    applied = RunRecorder(connection).applied_migrations()
    djangocompat.check_consistent_history(loader, applied, connection.alias)
