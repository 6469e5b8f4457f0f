"""``Backfill``: update a large table in short batches, resumably.

One ``UPDATE`` over a big table locks every row it touches until it commits,
bloats the table and, if it fails near the end, rolls back all of it. A
backfill instead walks the primary key in keyset batches (``pk > last ORDER BY
pk LIMIT n``); each batch is its own short transaction that also records how
far it got, so a crash or a kill resumes at the next batch. Between batches it
sleeps (``throttle``) to leave room for production traffic, and it reports
rows done, rows per second and the time left.

Usage in a migration (``safemigrate`` runs it as a step of its own, outside
any transaction)::

    from django.db.models import F
    from django.db.models.functions import Upper
    from django_safemigrate import Backfill

    operations = [
        Backfill(
            "customer",
            set={"email_normalized": Lower("email")},
            where=Q(email_normalized__isnull=True),
            reverse_set={"email_normalized": None},
            batch_size=2000,
            throttle=0.05,
        ),
    ]
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from collections.abc import Callable, Mapping
from typing import Any

from django.db import DatabaseError, transaction
from django.db.migrations.operations.base import Operation
from django.db.models import Q
from django.utils import timezone

from django_safemigrate.checksum_v1 import _canonical


@dataclasses.dataclass(frozen=True)
class Progress:
    """Where a backfill is, reported after each batch and once at the end."""

    model: str
    direction: str
    rows_done: int
    #: The table's estimated row count (``pg_class.reltuples``), when known.
    rows_estimate: int | None
    seconds: float
    finished: bool

    @property
    def rate(self) -> float:
        return self.rows_done / self.seconds if self.seconds > 0 else 0.0


ProgressCallback = Callable[[Progress], None]

_progress: ProgressCallback | None = None


def set_progress_reporter(callback: ProgressCallback | None) -> ProgressCallback | None:
    """Install the callback commands use to show progress; returns the previous one."""
    global _progress  # one reporter per process, set by the command
    previous, _progress = _progress, callback
    return previous


class Backfill(Operation):
    """Update rows of ``model_name`` in keyset batches, each in its own transaction."""

    reduces_to_sql = False
    #: Never inside the migration's transaction: each batch commits on its own.
    atomic = False
    elidable = False

    def __init__(
        self,
        model_name: str,
        set: Mapping[str, Any],  # reads like SQL's SET
        *,
        where: Q | None = None,
        reverse_set: Mapping[str, Any] | None = None,
        reverse_where: Q | None = None,
        batch_size: int = 1000,
        throttle: float = 0.0,
        retries: int = 5,
    ) -> None:
        if batch_size < 1:
            raise ValueError("Backfill batch_size must be at least 1.")
        self.model_name = model_name
        self.set = dict(set)
        self.where = where
        self.reverse_set = dict(reverse_set) if reverse_set is not None else None
        self.reverse_where = reverse_where
        self.batch_size = batch_size
        self.throttle = throttle
        self.retries = retries

    @property
    def reversible(self) -> bool:  # type: ignore[override]
        return self.reverse_set is not None

    def deconstruct(self) -> tuple[str, list[Any], dict[str, Any]]:
        kwargs: dict[str, Any] = {"set": self.set}
        for name, default in (
            ("where", None),
            ("reverse_set", None),
            ("reverse_where", None),
            ("batch_size", 1000),
            ("throttle", 0.0),
            ("retries", 5),
        ):
            value = getattr(self, name)
            if value != default:
                kwargs[name] = value
        return self.__class__.__name__, [self.model_name], kwargs

    def state_forwards(self, app_label: str, state: Any) -> None:
        pass

    def describe(self) -> str:
        fields = ", ".join(sorted(self.set))
        return f"Backfill {fields} on {self.model_name} in batches of {self.batch_size}"

    @property
    def migration_name_fragment(self) -> str:
        return f"backfill_{self.model_name.lower()}"

    def database_forwards(
        self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any
    ) -> None:
        self._run(
            app_label,
            schema_editor,
            to_state,
            direction="forward",
            values=self.set,
            where=self.where,
        )

    def database_backwards(
        self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any
    ) -> None:
        if self.reverse_set is None:
            raise NotImplementedError(f"{self.describe()} has no reverse_set.")
        self._run(
            app_label,
            schema_editor,
            from_state,
            direction="backward",
            values=self.reverse_set,
            where=self.reverse_where,
        )

    # -- the batches ---------------------------------------------------------------------

    def key(self, app_label: str) -> str:
        payload = repr(_canonical([self.model_name, self.set, self.where], ""))
        return "sha256:" + hashlib.sha256(f"{app_label}:{payload}".encode()).hexdigest()

    def _run(
        self,
        app_label: str,
        schema_editor: Any,
        state: Any,
        *,
        direction: str,
        values: Mapping[str, Any],
        where: Q | None,
    ) -> None:
        connection = schema_editor.connection
        model = state.apps.get_model(app_label, self.model_name)
        # Inside a transaction (plain ``migrate`` on an atomic migration) batches
        # cannot commit on their own: they all run in that transaction, untracked.
        tracked = not connection.in_atomic_block and _progress_table_exists(connection)
        run = _Batches(
            model=model,
            alias=connection.alias,
            progress_key={
                "app_label": app_label,
                "key": self.key(app_label),
                "direction": direction,
            },
            tracked=tracked,
            retries=self.retries,
        )
        saved = run.progress().first() if tracked else None
        last = model._meta.pk.to_python(saved.last_pk) if saved else None
        done = saved.rows_done if saved else 0
        total = _estimate(connection, model._meta.db_table)
        started = time.monotonic()
        pk = model._meta.pk.attname
        queryset = model._default_manager.using(connection.alias)
        if where is not None:
            queryset = queryset.filter(where)
        while True:
            window = queryset.order_by(pk)
            if last is not None:
                window = window.filter(**{f"{pk}__gt": last})
            keys = list(window.values_list(pk, flat=True)[: self.batch_size])
            if not keys:
                break
            done = run.batch(keys[0], keys[-1], values, where, done)
            last = keys[-1]
            if _progress is not None:
                _progress(
                    Progress(
                        model._meta.label, direction, done, total, time.monotonic() - started, False
                    )
                )
            if len(keys) < self.batch_size:
                break
            if self.throttle:
                time.sleep(self.throttle)
        if tracked:
            run.progress().delete()
        if _progress is not None:
            _progress(
                Progress(
                    model._meta.label, direction, done, total, time.monotonic() - started, True
                )
            )


@dataclasses.dataclass
class _Batches:
    model: Any
    alias: str
    progress_key: dict[str, str]
    tracked: bool
    retries: int

    def progress(self) -> Any:
        from django_safemigrate.models import BackfillProgress

        return BackfillProgress.objects.using(self.alias).filter(**self.progress_key)

    def batch(
        self, first: Any, last: Any, values: Mapping[str, Any], where: Q | None, done: int
    ) -> int:
        """Update one key range and record how far we got, in one short transaction.

        The UPDATE checks ``where`` again: a row the application changed since the
        keys were read no longer matches and is left alone. A key range keeps the
        statement the same size at any batch size (no list of keys to send).
        """
        from django_safemigrate.execution.runner import RETRYABLE, sqlstate

        pk = self.model._meta.pk.attname
        attempt = 1
        while True:
            try:
                with transaction.atomic(using=self.alias):
                    rows = self.model._default_manager.using(self.alias).filter(
                        **{f"{pk}__gte": first, f"{pk}__lte": last}
                    )
                    if where is not None:
                        rows = rows.filter(where)
                    updated = rows.update(**values)
                    if self.tracked:
                        self.progress().update_or_create(
                            **self.progress_key,
                            defaults={
                                "last_pk": str(last),
                                "rows_done": done + updated,
                                "updated_at": timezone.now(),
                            },
                        )
                return done + int(updated)
            except DatabaseError as exc:
                # A lock timeout or a deadlock rolled this batch back; try it again.
                if sqlstate(exc) not in RETRYABLE or attempt > self.retries:
                    raise
                time.sleep(min(10.0, 0.2 * 2**attempt))
                attempt += 1


def _estimate(connection: Any, table: str) -> int | None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass(%s)", [table]
        )
        row = cursor.fetchone()
    return int(row[0]) if row and row[0] and row[0] > 0 else None


def _progress_table_exists(connection: Any) -> bool:
    from django_safemigrate.models import BackfillProgress

    return BackfillProgress._meta.db_table in connection.introspection.table_names()
