"""Governance records in the database: what the gate saw, and the reviewers' decisions."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, connections, transaction
from django.db.migrations import Migration
from django.utils import timezone

from django_safemigrate.checksum import Comparison, compare, version_of
from django_safemigrate.enums import (
    Decision,
    Direction,
    GovernedStatus,
    Phase,
    ReviewState,
    Verdict,
)
from django_safemigrate.governance.gate import GateDecision, PastReview, review_state
from django_safemigrate.models import GovernedMigration, Review

Key = tuple[str, str]

#: The permission that lets a user approve or reject a migration.
PERMISSION = "django_safemigrate.decide_migration"


def past_reviews(
    using: str, keys: Iterable[Key], direction: Direction = Direction.FORWARD
) -> dict[Key, tuple[PastReview, ...]]:
    """Every decision on ``keys`` (applying them, or unapplying them), oldest first."""
    wanted = set(keys)
    found: dict[Key, list[PastReview]] = {}
    if not wanted:
        return {}
    rows = (
        Review.objects.using(using)
        .filter(
            migration__app_label__in={k[0] for k in wanted},
            migration__direction=direction.value,
        )
        .order_by("created_at", "id")
        .values_list("migration__app_label", "migration__name", "decision", "checksum")
    )
    for app_label, name, decision, checksum in rows:
        if (app_label, name) in wanted:
            found.setdefault((app_label, name), []).append(PastReview(Decision(decision), checksum))
    return {key: tuple(reviews) for key, reviews in found.items()}


def for_current_file(
    reviews: Iterable[PastReview], migration: Migration, current: str
) -> tuple[PastReview, ...]:
    """``reviews``, with decisions bound to an older algorithm's checksum of this same
    file bound to ``current`` (its checksum now) instead.

    Reviews given before checksums carried their algorithm's version hold version 1
    checksums; such a decision is for the file here exactly when version 1 of the file
    here gives the same checksum.
    """
    verdicts: dict[str, Comparison] = {}

    def bound(review: PastReview) -> PastReview:
        if review.checksum == current or version_of(review.checksum) != 1:
            return review
        if review.checksum not in verdicts:
            verdicts[review.checksum] = compare(review.checksum, migration, current)
        if verdicts[review.checksum] is Comparison.UPGRADED:
            return dataclasses.replace(review, checksum=current)
        return review

    return tuple(bound(review) for review in reviews)


def detections(using: str, keys: Iterable[Key]) -> dict[Key, datetime]:
    wanted = set(keys)
    rows = (
        GovernedMigration.objects.using(using)
        .filter(
            app_label__in={k[0] for k in wanted},
            detected__isnull=False,
            direction=Direction.FORWARD.value,
        )
        .values_list("app_label", "name", "detected")
    )
    return {(a, n): d for a, n, d in rows if (a, n) in wanted and d is not None}


def status_for(state: ReviewState, applied: bool) -> GovernedStatus:
    if state is ReviewState.REJECTED:
        return GovernedStatus.REJECTED
    if applied:
        return GovernedStatus.APPLIED
    if state is ReviewState.APPROVED:
        return GovernedStatus.APPROVED
    if state is ReviewState.NOT_REQUIRED:
        return GovernedStatus.NOT_REQUIRED
    return GovernedStatus.PENDING_REVIEW


def record_gate(
    using: str,
    decision: GateDecision,
    fields: Mapping[str, Any],
    *,
    now: datetime,
    applied: bool = False,
    direction: Direction = Direction.FORWARD,
) -> None:
    """Create or refresh the record of a migration the gate judged (for applying it, or
    for unapplying it)."""
    app_label, name = decision.key
    values = {
        **fields,
        "status": status_for(decision.review, applied).value,
        "review_required": decision.review_required,
        "blocked_reason": "; ".join(decision.reasons)
        if decision.verdict is not Verdict.RUN
        else "",
        "last_seen": now,
    }
    if not applied:
        # Judged for a plan: it has not happened (again) yet, whatever an earlier run did.
        values["applied_at"] = None
    # Runners of other schemas (tenants sharing these tables, each under its own schema's
    # lock) may write the same row meanwhile: see _update_or_insert.
    rows = GovernedMigration.objects.using(using).filter(
        app_label=app_label, name=name, direction=direction.value
    )
    analysis = values.get("analysis")
    if isinstance(analysis, dict) and "gate" not in analysis:
        # Judged alone (``reviewmigration``): what the last run's gate said still holds.
        before = rows.values_list("analysis", flat=True).first()
        if isinstance(before, dict) and "gate" in before:
            values["analysis"] = {**analysis, "gate": before["gate"]}
    _update_or_insert(
        using,
        rows,
        values,
        app_label=app_label,
        name=name,
        direction=direction.value,
        first_seen=now,
    )


def _update_or_insert(using: str, rows: Any, values: Mapping[str, Any], **new: Any) -> None:
    """Update ``rows`` with ``values``, or insert the row when there is none.

    Schemas that share these tables are migrated at once, each under its own lock
    (django-tenants' parallel executors, several deploy pods): two runners may both find
    no row and insert it. The insert runs in a savepoint, so the one that loses the race
    updates the row the other inserted instead of failing its run.
    """
    if rows.update(**values):
        return
    try:
        with transaction.atomic(using=using):
            GovernedMigration.objects.using(using).create(**new, **values)
    except IntegrityError:
        rows.update(**values)


def mark_detected(
    using: str, keys: Iterable[Key], phases: Mapping[Key, Phase], now: datetime
) -> None:
    """Start the clock of ``Safe.after_deploy(delay=...)`` for post-deploy migrations seen."""
    for key in keys:
        if phases.get(key) is not Phase.POST_DEPLOY:
            continue
        updated = (
            GovernedMigration.objects.using(using)
            .filter(app_label=key[0], name=key[1], detected__isnull=True, direction="forward")
            .update(detected=now)
        )
        if (
            not updated
            and not GovernedMigration.objects.using(using)
            .filter(app_label=key[0], name=key[1], direction="forward")
            .exists()
        ):
            try:
                # Another schema's runner may insert it meanwhile: its clock stands.
                with transaction.atomic(using=using):
                    GovernedMigration.objects.using(using).create(
                        app_label=key[0],
                        name=key[1],
                        checksum="",
                        risk="safe",
                        phase=Phase.POST_DEPLOY.value,
                        status=GovernedStatus.NOT_REQUIRED.value,
                        review_required=False,
                        first_seen=now,
                        last_seen=now,
                        detected=now,
                    )
            except IntegrityError:
                pass


def unapplied_governed(using: str, direction: Direction = Direction.FORWARD) -> set[Key]:
    """Governed migrations not applied (or, backward, not unapplied) yet: one query."""
    return set(
        GovernedMigration.objects.using(using)
        .filter(applied_at__isnull=True, direction=direction.value)
        .values_list("app_label", "name")
    )


def mark_applied_statement(
    using: str, key: Key, now: datetime, direction: Direction = Direction.FORWARD
) -> tuple[str, list[Any]]:
    """The statement of :func:`mark_applied` for the record itself: applied at ``now``,
    its status ``applied`` unless a reviewer rejected it. The executor writes it with the
    migration's own records, in its transaction."""
    quote = connections[using].ops.quote_name
    rejected = GovernedStatus.REJECTED.value
    return (
        f"UPDATE {quote(GovernedMigration._meta.db_table)} SET applied_at = %s, "
        "status = CASE WHEN status = %s THEN status ELSE %s END, "
        "blocked_reason = CASE WHEN status = %s THEN blocked_reason ELSE '' END "
        "WHERE app_label = %s AND name = %s AND direction = %s",
        [
            now,
            rejected,
            GovernedStatus.APPLIED.value,
            rejected,
            key[0],
            key[1],
            direction.value,
        ],
    )


def mark_applied(
    using: str, key: Key, now: datetime, direction: Direction = Direction.FORWARD
) -> None:
    """A governed migration was applied (or unapplied, for a rollback's record): its
    status shows it (a rejection still shows). Unapplying it also makes its forward record
    wait again, with what its reviews say about the version it has."""
    with connections[using].cursor() as cursor:
        cursor.execute(*mark_applied_statement(using, key, now, direction))
    if direction is Direction.BACKWARD:
        forward = GovernedMigration.objects.using(using).filter(
            app_label=key[0], name=key[1], direction=Direction.FORWARD.value
        )
        for governed in forward.filter(applied_at__isnull=False):
            reviews = past_reviews(using, [key]).get(key, ())
            state = review_state(reviews, governed.checksum, required=governed.review_required)
            forward.filter(pk=governed.pk).update(
                applied_at=None, status=status_for(state, applied=False).value
            )


@dataclasses.dataclass(frozen=True)
class Decided:
    review: Review
    state: ReviewState


def decide_migration(
    governed: GovernedMigration,
    *,
    user: Any,
    decision: Decision,
    note: str,
    source: str,
    checksum: str | None = None,
    os_user: str = "",
    host: str = "",
) -> Decided:
    """Record ``user``'s decision on ``governed`` (for ``checksum``, default: its own).

    Enforces the permission; raises :class:`PermissionDenied` without writing anything.
    ``os_user`` and ``host`` say where a decision from the command line came from.
    """
    if user is None or not user.is_active or not user.has_perm(PERMISSION):
        raise PermissionDenied(
            f"{getattr(user, 'get_username', lambda: 'anonymous')()} may not approve or reject "
            f"migrations: that needs the permission {PERMISSION!r}."
        )
    note = note.strip()
    if not note:
        raise ValueError("A review needs a note saying why.")
    using = governed._state.db or "default"
    bound = checksum or governed.checksum
    from django_safemigrate.governance.signals import migration_reviewed

    with transaction.atomic(using=using):
        # One decision at a time per migration: the row lock orders concurrent reviewers.
        governed = GovernedMigration.objects.using(using).select_for_update().get(pk=governed.pk)
        review = Review.objects.using(using).create(
            migration=governed,
            checksum=bound,
            decision=decision.value,
            reviewer_name=user.get_username(),
            reviewer_pk=str(user.pk),
            note=note,
            source=source,
            os_user=os_user[:150],
            host=host[:255],
            created_at=timezone.now(),
        )
        reviews = past_reviews(
            using, [(governed.app_label, governed.name)], Direction(governed.direction)
        ).get((governed.app_label, governed.name), ())
        state = review_state(reviews, governed.checksum, required=governed.review_required)
        governed.status = status_for(state, governed.applied_at is not None).value
        fields = ["status"]
        if state is ReviewState.APPROVED and governed.blocked_reason:
            # The review was what held it; the next run's gate says if anything else does.
            governed.blocked_reason = ""
            fields.append("blocked_reason")
        governed.save(using=using, update_fields=fields)
        transaction.on_commit(
            lambda: migration_reviewed.send(sender=Review, review=review, migration=governed),
            using=using,
        )
    return Decided(review, state)


def review_url(using: str, key: Key, direction: Direction = Direction.FORWARD) -> str | None:
    """The admin page of a governed migration, when the admin's URLs are installed."""
    from django.db import DatabaseError, transaction
    from django.urls import NoReverseMatch, reverse

    try:
        # A savepoint: on a database whose ledger tables do not exist yet (``--plan``
        # before the first run), the failed lookup must not break a transaction around it.
        with transaction.atomic(using=using):
            governed = (
                GovernedMigration.objects.using(using)
                .filter(app_label=key[0], name=key[1], direction=direction.value)
                .values_list("pk", flat=True)
                .first()
            )
    except DatabaseError:
        return None
    if governed is None:
        return None
    from django.conf import settings

    if not getattr(settings, "ROOT_URLCONF", None):
        return None
    try:
        return reverse("admin:django_safemigrate_governedmigration_change", args=[governed])
    except (NoReverseMatch, ImportError):
        return None
