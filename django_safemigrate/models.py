"""The ledger: every run of ``migrate``/``safemigrate`` and every migration it touched.

Rows are written by the runner only; the admin shows them read-only.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from django_safemigrate.enums import MigrationOutcome, RunOutcome


class Run(models.Model):
    """One invocation of ``migrate`` or ``safemigrate`` that reached the database."""

    command = models.CharField(max_length=40)
    argv = models.TextField(help_text=_("The command line as it was given."))
    database = models.CharField(max_length=100)
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

    class Meta:
        verbose_name = _("run")
        verbose_name_plural = _("runs")
        ordering = ["-started_at", "-id"]

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
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField()
    duration = models.DurationField()
    outcome = models.CharField(
        max_length=20, choices=[(o.value, o.value) for o in MigrationOutcome]
    )
    error = models.TextField(blank=True)

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
