"""Signals a project can connect to, to tell its chat or pager.

- ``migration_blocked(sender, app_label, name, checksum, risk, reasons, using)``:
  ``safemigrate`` held a migration back and someone has to act (a missing, stale or
  rejected review; a pre-deploy migration that depends on a post-deploy one).
- ``migration_reviewed(sender, review, migration)``: a reviewer approved or rejected
  a migration (``review`` is the new :class:`~django_safemigrate.models.Review`,
  ``migration`` its :class:`~django_safemigrate.models.GovernedMigration`); sent once
  the decision is committed.
- ``migration_applied(sender, app_label, name, using)``: ``migrate`` or
  ``safemigrate`` applied a migration (not when faking).
- ``lock_wait_alert(sender, database, command, waited, threshold, holder)``: a run of
  ``migrate`` or ``safemigrate`` has waited for the migration lock longer than
  ``SAFEMIGRATE['LOCK_WAIT_ALERT']`` seconds; sent once per wait. ``holder`` is a dict
  (the fields of the ``lock.wait`` event's ``holder``), or ``None`` when the lock was
  released a moment ago. A receiver that raises is logged; the run goes on.
"""

from __future__ import annotations

from django.dispatch import Signal

migration_blocked = Signal()
migration_reviewed = Signal()
migration_applied = Signal()
lock_wait_alert = Signal()
