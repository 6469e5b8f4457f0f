"""The gate: which migrations of a plan may run now, and why the others may not.

A pure function of the plan, what the analysis said about each migration, the
reviews given so far, the requested phase and the settings; it reads nothing
and writes nothing, so every combination is tested as a table.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from django_safemigrate.enums import (
    Decision,
    Kind,
    OnBlocked,
    Phase,
    RequestedPhase,
    ReviewState,
    Risk,
    Verdict,
)

Key = tuple[str, str]


@dataclasses.dataclass(frozen=True)
class PastReview:
    """One recorded decision, as the gate needs it (oldest first in a sequence)."""

    decision: Decision
    checksum: str


@dataclasses.dataclass(frozen=True)
class GateItem:
    """One migration of the plan, in plan order."""

    key: Key
    checksum: str
    risk: Risk
    phase: Phase
    #: Migrations it depends on (graph parents, ``run_before`` included); those outside
    #: the plan are applied already and do not matter.
    dependencies: tuple[Key, ...] = ()
    reviews: tuple[PastReview, ...] = ()
    #: ``Safe.after_deploy(delay=...)``: may run in the pre-deploy phase once this long
    #: has passed since ``detected``.
    delay: timedelta | None = None
    detected: datetime | None = None
    #: What its findings put at risk (``MigrationReport.kinds``).
    kinds: frozenset[Kind] = frozenset()
    #: ``False`` for an installed package's migration left out of scope: needs no review.
    governed: bool = True


@dataclasses.dataclass(frozen=True)
class GatePolicy:
    #: The lowest risk that needs a review; ``None``: none do.
    review_at: Risk | None = Risk.DESTRUCTIVE
    phase: RequestedPhase = RequestedPhase.ALL
    on_blocked: OnBlocked = OnBlocked.STOP
    #: ``False``: everything runs (disabled mode, or a database with nothing applied).
    govern: bool = True
    now: datetime | None = None
    #: Kinds of findings that need a review whatever the risk (``REVIEW`` as a list).
    review_kinds: frozenset[Kind] = frozenset()
    #: The plan unapplies migrations: an item waits for those unapplied before it.
    backward: bool = False


@dataclasses.dataclass(frozen=True)
class GateDecision:
    key: Key
    verdict: Verdict
    review: ReviewState
    review_required: bool
    #: Why it does not run (empty when it runs).
    reasons: tuple[str, ...] = ()
    #: The migrations of the plan that hold it back.
    held_by: tuple[Key, ...] = ()


@dataclasses.dataclass(frozen=True)
class GateResult:
    decisions: tuple[GateDecision, ...]
    #: True when something is blocked and the policy stops the whole plan.
    stopped: bool

    @property
    def to_run(self) -> tuple[Key, ...]:
        if self.stopped:
            return ()
        return tuple(d.key for d in self.decisions if d.verdict is Verdict.RUN)

    def with_verdict(self, verdict: Verdict) -> tuple[GateDecision, ...]:
        return tuple(d for d in self.decisions if d.verdict is verdict)

    @property
    def blocked(self) -> tuple[GateDecision, ...]:
        return self.with_verdict(Verdict.BLOCKED)

    @property
    def deferred(self) -> tuple[GateDecision, ...]:
        return self.with_verdict(Verdict.DEFERRED)


def review_state(reviews: Sequence[PastReview], checksum: str, *, required: bool) -> ReviewState:
    """Where a migration stands for its current ``checksum``.

    A rejection stands until a later approval of the version it rejected or of the
    current one: editing the file does not clear a rejection, but a rejection that an
    approval answered stays answered when the file changes afterwards (the approval is
    then stale, and the new version needs a review). An approval counts only for the
    checksum it was given for.
    """
    standing: list[str] = []  # checksums of rejections no later approval answered
    approved = False
    for review in reviews:
        if review.decision is Decision.REJECT:
            standing.append(review.checksum)
            continue
        if review.checksum == checksum:
            standing.clear()
            approved = True
        else:
            standing = [c for c in standing if c != review.checksum]
    if standing:
        return ReviewState.REJECTED
    if approved:
        return ReviewState.APPROVED
    if not required:
        return ReviewState.NOT_REQUIRED
    if any(r.decision is Decision.APPROVE for r in reviews):
        return ReviewState.STALE
    return ReviewState.PENDING


_REVIEW_REASON = {
    ReviewState.PENDING: "needs a review ({why}) and has none",
    ReviewState.STALE: (
        "was approved for another version of the file ({why}); the approval no longer counts"
    ),
    ReviewState.REJECTED: "was rejected by a reviewer",
}


def review_reason(
    risk: Risk,
    kinds: Iterable[Kind],
    review_at: Risk | None,
    review_kinds: frozenset[Kind] = frozenset(),
) -> str | None:
    """Why a migration of ``risk`` whose findings are of ``kinds`` needs a review under the
    ``REVIEW`` setting (``"destructive"``, ``"risky: breaks old code"``); ``None`` when it
    needs none."""
    if review_at is not None and risk.rank >= review_at.rank:
        return risk.value
    matched = sorted(kind.value for kind in review_kinds.intersection(kinds))
    if matched:
        return f"{risk.value}: {', '.join(m.replace('-', ' ') for m in matched)}"
    return None


def decide(items: Iterable[GateItem], policy: GatePolicy) -> GateResult:
    """One decision per item, in the order given (the plan's)."""
    decisions: dict[Key, GateDecision] = {}
    for item in items:
        why = (
            review_reason(item.risk, item.kinds, policy.review_at, policy.review_kinds)
            if item.governed
            else None
        )
        required = why is not None
        review = review_state(item.reviews, item.checksum, required=required)
        if not policy.govern:
            decisions[item.key] = GateDecision(item.key, Verdict.RUN, review, required)
            continue

        verdict, reasons, held_by = Verdict.RUN, [], []
        if (
            policy.phase is RequestedPhase.PRE
            and item.phase is Phase.POST_DEPLOY
            and not _delay_passed(item, policy.now)
        ):
            # It would not run now anyway: a missing review is for the post-deploy run.
            verdict = Verdict.DEFERRED
            reasons.append(_deferred_reason(item))
        if review in _REVIEW_REASON:
            if verdict is Verdict.RUN:
                verdict = Verdict.BLOCKED
            reasons.append(_REVIEW_REASON[review].format(why=why or item.risk.value))

        for dependency in item.dependencies:
            before = decisions.get(dependency)
            if before is None or before.verdict is Verdict.RUN:
                continue
            held_by.append(dependency)
            name = ".".join(dependency)
            if before.verdict is Verdict.BLOCKED:
                verdict = Verdict.BLOCKED
                reasons.append(
                    f"is unapplied after {name}, whose rollback is blocked"
                    if policy.backward
                    else f"depends on {name}, which is blocked"
                )
            elif item.phase is Phase.PRE_DEPLOY:
                verdict = Verdict.BLOCKED
                reasons.append(
                    f"is a pre-deploy migration but depends on {name}, which waits for the "
                    "post-deploy phase: it cannot run before the new code rolls out. Run the "
                    "post-deploy phase first, or remove the dependency"
                )
            else:
                if verdict is Verdict.RUN:
                    verdict = Verdict.DEFERRED
                reasons.append(f"depends on {name}, which waits for the post-deploy phase")
        decisions[item.key] = GateDecision(
            item.key, verdict, review, required, tuple(reasons), tuple(held_by)
        )

    ordered = tuple(decisions.values())
    stopped = policy.on_blocked is OnBlocked.STOP and any(
        d.verdict is Verdict.BLOCKED for d in ordered
    )
    return GateResult(ordered, stopped)


def _delay_passed(item: GateItem, now: datetime | None) -> bool:
    """The older package's delayed ``after_deploy``: runs once seen long enough ago."""
    return (
        item.delay is not None
        and item.detected is not None
        and now is not None
        and now >= item.detected + item.delay
    )


def _deferred_reason(item: GateItem) -> str:
    if item.delay is not None and item.detected is not None:
        when = item.detected + item.delay
        return f"is post-deploy; its delay ends at {when.isoformat(timespec='seconds')}"
    if item.delay is not None:
        return "is post-deploy; its delay starts once safemigrate has seen it in a plan"
    return "is post-deploy: it runs once the new code is out (safemigrate --phase post)"
