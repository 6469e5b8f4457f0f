"""The ledger: every run of ``migrate``/``safemigrate`` and every migration it touched.

Rows are written by the runner only; the admin shows them read-only.
"""

from __future__ import annotations

from typing import Any

from django.db import models
from django.utils.translation import gettext_lazy as _

from django_safemigrate.enums import (
    Decision,
    Direction,
    GovernedStatus,
    MigrationOutcome,
    Phase,
    Risk,
    RunOutcome,
)


class Run(models.Model):
    """One invocation of ``migrate`` or ``safemigrate`` that reached the database."""

    command = models.CharField(max_length=40)
    argv = models.TextField(help_text=_("The command line as it was given."))
    database = models.CharField(max_length=100)
    #: The schema the run migrated (``current_schema()`` of its connection): one tenant of
    #: a schema-per-tenant database. Step records, checksums, interrupted runs and first
    #: deploys are read per schema. On PostgreSQL the column's database default is
    #: ``current_schema()`` (migration 0010): it fills the rows from before it existed, and
    #: those of a runner of the previous release during a rolling upgrade.
    schema = models.CharField(
        max_length=63, blank=True, default="", help_text=_("The schema it migrated.")
    )
    host = models.CharField(max_length=255)
    pid = models.PositiveIntegerField()
    user = models.CharField(max_length=150, help_text=_("Operating-system user."))
    started_at = models.DateTimeField()
    lock_acquired_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(
        max_length=20,
        choices=[(o.value, o.value) for o in RunOutcome],
        default=RunOutcome.RUNNING.value,
    )
    exit_code = models.SmallIntegerField(null=True, blank=True)
    message = models.TextField(blank=True)
    #: Empty for a run the gate governed; otherwise what it did without the gate
    #: (reviews, phases) and why: plain ``migrate``, ``--fake``, an older-package mode,
    #: an accepted ledger loss.
    #: Nullable, like the other columns added to a table that exists: a runner of an
    #: older release inserts rows without it during a rolling upgrade.
    ungoverned = models.TextField(  # noqa: DJ001
        blank=True, null=True, help_text=_("What this run did without governance, and why.")
    )
    #: ``True`` for a run of the database's first deploy: it began with nothing applied, or
    #: continued such a run that had not completed (README, "A new database").
    first_deploy = models.BooleanField(
        null=True, blank=True, help_text=_("Part of the database's first deploy.")
    )
    #: What the recovery-point check found before the run's first destructive migration
    #: (``SAFEMIGRATE['BACKUP_CHECK']``): ``passed: …``, ``warned: …`` or ``stopped: …``;
    #: empty when the check was off or the plan destroyed nothing.
    recovery_check = models.TextField(  # noqa: DJ001
        blank=True, null=True, help_text=_("What the recovery-point check found.")
    )

    class Meta:
        verbose_name = _("run")
        verbose_name_plural = _("runs")
        ordering = ["-started_at", "-id"]
        # What a run reads of the ledger is its schema's (the steps done, the interrupted
        # runs, the first deploy, the high-water mark): in a fleet, found without reading
        # every tenant's runs (migration 0011).
        indexes = [models.Index(fields=["schema"], name="django_safemigrate_run_schema")]

    def __str__(self) -> str:
        return (
            f"{self.command} on {self.host} pid {self.pid} at {self.started_at:%Y-%m-%d %H:%M:%S}"
        )


class MigrationRecord(models.Model):
    """One migration applied, faked, unapplied or failed in one run."""

    run = models.ForeignKey(Run, on_delete=models.PROTECT, related_name="migrations")
    app_label = models.CharField(max_length=255)
    name = models.CharField(max_length=255)
    checksum = models.CharField(max_length=80)
    #: The checksum of the migration's own file, without the project code it reaches
    #: (``checksum.definition_checksum``): tells an edited migration file from an edited
    #: helper. Nullable: rows written before it existed, and by an older runner during a
    #: rolling upgrade, have none.
    definition = models.CharField(max_length=80, null=True, blank=True)  # noqa: DJ001
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField()
    duration = models.DurationField()
    outcome = models.CharField(
        max_length=20, choices=[(o.value, o.value) for o in MigrationOutcome]
    )
    error = models.TextField(blank=True)
    #: For a migration the gate let run on a review: who approved which version, when and
    #: why (applied, or unapplied for a governed rollback). Nullable: added to a table
    #: that exists, without breaking older runners' inserts.
    approval = models.TextField(  # noqa: DJ001
        blank=True, null=True, help_text=_("The review that let it run.")
    )

    class Meta:
        verbose_name = _("migration record")
        verbose_name_plural = _("migration records")
        ordering = ["-started_at", "-id"]
        indexes = [models.Index(fields=["app_label", "name"], name="safemigrate_record_migration")]

    def __str__(self) -> str:
        return f"{self.app_label}.{self.name} {self.outcome}"


class StepRecord(models.Model):
    """One finished step of a migration that ``safemigrate`` split into steps.

    A rerun after a failure or a crash skips the steps finished since the
    migration was last applied or unapplied, as long as the migration's checksum
    and its split into steps are unchanged.
    """

    run = models.ForeignKey(Run, on_delete=models.PROTECT, related_name="steps")
    app_label = models.CharField(max_length=255)
    name = models.CharField(max_length=255)
    checksum = models.CharField(max_length=80)
    #: Hash of the split (kinds and contents of the steps), so a changed split is noticed.
    plan = models.CharField(max_length=80)
    step_index = models.PositiveSmallIntegerField()
    step_count = models.PositiveSmallIntegerField()
    kind = models.CharField(max_length=20)
    description = models.TextField()
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField()
    duration = models.DurationField()
    attempts = models.PositiveSmallIntegerField(default=1)
    #: The strongest table lock the step takes ("ACCESS EXCLUSIVE", "row locks", …).
    #: Nullable: added to a table that exists, without breaking older runners' inserts.
    lock = models.CharField(max_length=40, blank=True, null=True)  # noqa: DJ001

    class Meta:
        verbose_name = _("migration step")
        verbose_name_plural = _("migration steps")
        ordering = ["-finished_at", "-id"]
        indexes = [models.Index(fields=["app_label", "name"], name="safemigrate_step_migration")]

    def __str__(self) -> str:
        return f"{self.app_label}.{self.name} step {self.step_index + 1}/{self.step_count}"


class BackfillProgress(models.Model):
    """How far a batched backfill got, so a rerun continues at the next batch."""

    app_label = models.CharField(max_length=255)
    key = models.CharField(max_length=80, help_text=_("Hash of the backfill's definition."))
    direction = models.CharField(max_length=10)
    last_pk = models.TextField()
    rows_done = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField()

    class Meta:
        verbose_name = _("backfill progress")
        verbose_name_plural = _("backfill progress")
        constraints = [
            models.UniqueConstraint(
                fields=["app_label", "key", "direction"], name="safemigrate_backfill_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.app_label} backfill {self.key[:19]} {self.direction}: {self.rows_done} rows"


class GovernedMigration(models.Model):
    """A migration the gate held back or that needs a review, as ``safemigrate`` saw it.

    ``safemigrate`` writes it when a migration needs a review or is blocked: what the
    reviewer needs (findings, the SQL for this database, locks, table sizes) is kept
    here, for the checksum it was judged at. Reviews are separate, append-only rows.
    """

    app_label = models.CharField(max_length=255)
    name = models.CharField(max_length=255)
    #: ``forward`` (applying it) or ``backward`` (unapplying it: a governed rollback),
    #: each judged and reviewed apart. The column keeps its database default, so that an
    #: older runner inserting forward records during a rolling upgrade still can.
    direction = models.CharField(
        max_length=10,
        choices=[(d.value, d.value) for d in Direction],
        default=Direction.FORWARD.value,
    )
    #: Checksum of the file when it was last judged; reviews are bound to a checksum.
    checksum = models.CharField(max_length=80)
    path = models.CharField(max_length=500, blank=True)
    risk = models.CharField(max_length=20, choices=[(r.value, r.value) for r in Risk])
    phase = models.CharField(max_length=20, choices=[(p.value, p.value) for p in Phase])
    phase_reason = models.TextField(blank=True)
    status = models.CharField(
        max_length=20,
        choices=[(s.value, s.value.replace("_", " ")) for s in GovernedStatus],
        default=GovernedStatus.PENDING_REVIEW.value,
    )
    review_required = models.BooleanField(default=True)
    #: Why the gate last held it back (empty once it may run).
    blocked_reason = models.TextField(blank=True)
    #: ``{"findings": [...], "operations": [...], "steps": [...], "tables": [...],
    #: "database": {...}}``, as the analysis produced it.
    analysis = models.JSONField(default=dict)
    #: The SQL this migration runs on this database, statement per line.
    sql = models.TextField(blank=True)
    first_seen = models.DateTimeField()
    last_seen = models.DateTimeField()
    #: When ``safemigrate`` first saw it in a plan that went ahead: the start of a
    #: ``Safe.after_deploy(delay=...)`` delay.
    detected = models.DateTimeField(null=True, blank=True)
    applied_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("migration")
        verbose_name_plural = _("migrations")
        ordering = ["-last_seen", "app_label", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["app_label", "name", "direction"], name="safemigrate_governed_direction"
            )
        ]

    def __str__(self) -> str:
        rollback = " (rollback)" if self.direction == Direction.BACKWARD.value else ""
        return f"{self.app_label}.{self.name}{rollback}"


class ReviewQuerySet(models.QuerySet["Review"]):
    def update(self, **kwargs: Any) -> int:
        raise AppendOnlyError("Reviews are append-only: record a new decision instead.")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise AppendOnlyError("Reviews are append-only and cannot be deleted.")


class AppendOnlyError(Exception):
    """Raised on an attempt to change or delete a review."""


class Review(models.Model):
    """One reviewer's decision on one version (checksum) of a migration. Append-only.

    The database refuses UPDATE and DELETE on this table (a trigger), so neither the
    admin nor a stray script can rewrite the history of decisions.
    """

    migration = models.ForeignKey(
        GovernedMigration, on_delete=models.PROTECT, related_name="reviews"
    )
    checksum = models.CharField(max_length=80)
    decision = models.CharField(max_length=10, choices=[(d.value, d.value) for d in Decision])
    #: The reviewer's user name and primary key when the decision was given; plain values,
    #: not a foreign key, so deleting the account never has to touch this row.
    reviewer_name = models.CharField(max_length=150)
    reviewer_pk = models.CharField(max_length=64, blank=True)
    note = models.TextField()
    #: ``admin`` or ``command`` (``manage.py reviewmigration``).
    source = models.CharField(max_length=20)
    #: For a decision from the command line: the operating-system user and host that ran
    #: it. Whoever can run management commands can name any reviewer with ``--as``, so
    #: these say where the decision really came from.
    #: Nullable: added to a table that exists, without breaking older releases' inserts.
    os_user = models.CharField(max_length=150, blank=True, null=True)  # noqa: DJ001
    host = models.CharField(max_length=255, blank=True, null=True)  # noqa: DJ001
    created_at = models.DateTimeField()

    objects = ReviewQuerySet.as_manager()

    class Meta:
        verbose_name = _("review")
        verbose_name_plural = _("reviews")
        ordering = ["-created_at", "-id"]
        permissions = [("decide_migration", "Can approve or reject migrations")]

    def __str__(self) -> str:
        return f"{self.decision} {self.migration} by {self.reviewer_name}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None and not self._state.adding:
            raise AppendOnlyError("Reviews are append-only: record a new decision instead.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise AppendOnlyError("Reviews are append-only and cannot be deleted.")


class LedgerMark(models.Model):
    """How many rows the ledger held when a run finished: the high-water mark of the whole
    ledger, as releases before migration 0011 kept it (a runner of such a release still
    updates it during a rolling upgrade).

    Kept outside the append-only tables (and mirrored in a comment on
    ``django_migrations``), so a ledger that lost rows (deleted with its triggers
    disabled, its tables dropped and created again, an old copy restored) is noticed
    instead of silently adopting the whole history again. One row, created with the table.
    Runs now keep a mark per schema (:class:`SchemaMark`); this one is read only for a
    schema that has none yet (:mod:`django_safemigrate.execution.continuity`).
    """

    runs = models.BigIntegerField(default=0)
    records = models.BigIntegerField(default=0)
    steps = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField()

    class Meta:
        verbose_name = _("ledger mark")
        verbose_name_plural = _("ledger marks")

    def __str__(self) -> str:
        return f"{self.runs} runs, {self.records} migration records, {self.steps} steps"


class SchemaMark(models.Model):
    """How many rows the ledger held of one schema's runs when its last run finished: the
    high-water mark of that schema's history (:mod:`django_safemigrate.execution.continuity`).

    Kept outside the append-only tables (and mirrored in a comment on the schema's
    ``django_migrations``), so a history that lost rows is noticed instead of silently
    adopted again. Per schema, so that a run counts its own schema's history, not every
    tenant's. Refuses ``DELETE`` and ``TRUNCATE`` like the rest of the ledger.
    """

    schema = models.CharField(max_length=63, unique=True)
    runs = models.BigIntegerField(default=0)
    records = models.BigIntegerField(default=0)
    steps = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField()

    class Meta:
        verbose_name = _("schema mark")
        verbose_name_plural = _("schema marks")

    def __str__(self) -> str:
        return (
            f"{self.schema}: {self.runs} runs, {self.records} migration records, {self.steps} steps"
        )


class Archive(models.Model):
    """The data one destructive step dropped, kept in a table of the archive schema.

    Written in the step's transaction, before the drop (``SAFEMIGRATE['ARCHIVE']``);
    ``manage.py restorearchive`` puts it back. Append-only, like the rest of the ledger.
    """

    run = models.ForeignKey(Run, on_delete=models.PROTECT, related_name="archives")
    app_label = models.CharField(max_length=255)
    name = models.CharField(max_length=255)
    #: The operation that dropped the data (its index in the migration, and its class).
    operation_index = models.PositiveSmallIntegerField()
    operation = models.CharField(max_length=100)
    source_table = models.CharField(max_length=255)
    #: The dropped column; empty when the whole table was dropped.
    source_column = models.CharField(max_length=255, blank=True)
    #: The table's primary key column(s), comma-separated: how restored rows find their place.
    primary_key = models.CharField(max_length=255)
    archive_schema = models.CharField(max_length=63)
    archive_table = models.CharField(max_length=63)
    row_count = models.BigIntegerField()
    created_at = models.DateTimeField()

    class Meta:
        verbose_name = _("archive")
        verbose_name_plural = _("archives")
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.source}: {self.row_count} rows in {self.archive_schema}.{self.archive_table}"

    @property
    def source(self) -> str:
        return (
            f"{self.source_table}.{self.source_column}" if self.source_column else self.source_table
        )
