"""The gate as a table: every combination of risk, review history, phase and policy.

The expectations are the contract, written as plainly as it is in the README:

- ``--phase pre`` defers a post-deploy migration (its review, if missing, is for
  the post-deploy run); nothing else is held back by phase;
- a migration needs a review when its risk is at or above ``REVIEW``; it is blocked
  while it has none for its current checksum (pending), only one for another
  checksum (stale), or while a rejection stands (no later approval of the version it
  rejected or of the current one), whatever its risk;
- with the gate off everything runs;
- ``ON_BLOCKED = "stop"`` runs nothing when anything is blocked.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from django_safemigrate.enums import (
    Decision,
    OnBlocked,
    Phase,
    RequestedPhase,
    ReviewState,
    Risk,
    Verdict,
)
from django_safemigrate.governance.gate import (
    GateItem,
    GatePolicy,
    PastReview,
    decide,
    review_state,
)

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
CURRENT, OLD = "sha256:current", "sha256:old"

APPROVE_NOW = PastReview(Decision.APPROVE, CURRENT)
APPROVE_OLD = PastReview(Decision.APPROVE, OLD)
REJECT_NOW = PastReview(Decision.REJECT, CURRENT)
REJECT_OLD = PastReview(Decision.REJECT, OLD)

#: name → (decisions oldest first, is there a rejection not followed by an approval of
#: the current checksum, is there an approval of the current checksum, any approval)
HISTORIES = {
    "none": (),
    "approved": (APPROVE_NOW,),
    "approved-another-version": (APPROVE_OLD,),
    "rejected": (REJECT_NOW,),
    "rejected-another-version": (REJECT_OLD,),
    "rejected-then-approved": (REJECT_NOW, APPROVE_NOW),
    "approved-then-rejected": (APPROVE_NOW, REJECT_NOW),
    "rejected-then-approved-another-version": (REJECT_NOW, APPROVE_OLD),
    # Rejected, approved, then the file was edited: the approval is stale, the rejection
    # it answered is not back.
    "rejected-approved-then-edited": (REJECT_OLD, APPROVE_OLD),
    "rejected-approved-edited-rejected-again": (REJECT_OLD, APPROVE_OLD, REJECT_NOW),
}
EXPECTED_STATE = {
    # history: (state when a review is required, state when it is not)
    "none": (ReviewState.PENDING, ReviewState.NOT_REQUIRED),
    "approved": (ReviewState.APPROVED, ReviewState.APPROVED),
    "approved-another-version": (ReviewState.STALE, ReviewState.NOT_REQUIRED),
    "rejected": (ReviewState.REJECTED, ReviewState.REJECTED),
    "rejected-another-version": (ReviewState.REJECTED, ReviewState.REJECTED),
    "rejected-then-approved": (ReviewState.APPROVED, ReviewState.APPROVED),
    "approved-then-rejected": (ReviewState.REJECTED, ReviewState.REJECTED),
    "rejected-then-approved-another-version": (ReviewState.REJECTED, ReviewState.REJECTED),
    "rejected-approved-then-edited": (ReviewState.STALE, ReviewState.NOT_REQUIRED),
    "rejected-approved-edited-rejected-again": (ReviewState.REJECTED, ReviewState.REJECTED),
}
REVIEW_AT = {"never": None, "risky": Risk.RISKY, "destructive": Risk.DESTRUCTIVE}


def expected_verdict(
    risk: Risk, history: str, phase: Phase, requested: RequestedPhase, review_at: Risk | None
) -> Verdict:
    if requested is RequestedPhase.PRE and phase is Phase.POST_DEPLOY:
        return Verdict.DEFERRED
    required = review_at is not None and risk.rank >= review_at.rank
    state = EXPECTED_STATE[history][0 if required else 1]
    if state in (ReviewState.PENDING, ReviewState.STALE, ReviewState.REJECTED):
        return Verdict.BLOCKED
    return Verdict.RUN


COMBINATIONS = list(itertools.product(Risk, HISTORIES, Phase, RequestedPhase, REVIEW_AT, OnBlocked))


@pytest.mark.parametrize(
    ("risk", "history", "phase", "requested", "review_at", "on_blocked"), COMBINATIONS
)
def test_one_migration(risk, history, phase, requested, review_at, on_blocked):  # noqa: PLR0917
    item = GateItem(("shop", "0002_x"), CURRENT, risk, phase, reviews=HISTORIES[history])
    policy = GatePolicy(REVIEW_AT[review_at], requested, on_blocked, govern=True, now=NOW)
    result = decide([item], policy)
    (decision,) = result.decisions
    expected = expected_verdict(risk, history, phase, requested, REVIEW_AT[review_at])
    assert decision.verdict is expected
    required = REVIEW_AT[review_at] is not None and risk.rank >= REVIEW_AT[review_at].rank
    assert decision.review_required is required
    assert decision.review is EXPECTED_STATE[history][0 if required else 1]
    assert result.stopped is (expected is Verdict.BLOCKED and on_blocked is OnBlocked.STOP)
    assert result.to_run == ((item.key,) if expected is Verdict.RUN else ())
    assert bool(decision.reasons) is (expected is not Verdict.RUN)


@pytest.mark.parametrize(
    ("risk", "history", "phase", "requested"),
    list(itertools.product(Risk, HISTORIES, Phase, RequestedPhase)),
)
def test_with_the_gate_off_everything_runs(risk, history, phase, requested):
    item = GateItem(("shop", "0002_x"), CURRENT, risk, phase, reviews=HISTORIES[history])
    result = decide([item], GatePolicy(Risk.SAFE, requested, OnBlocked.STOP, govern=False))
    assert result.to_run == (item.key,)
    assert not result.stopped


def test_review_state_is_bound_to_the_checksum():
    assert review_state([APPROVE_OLD], CURRENT, required=True) is ReviewState.STALE
    assert review_state([APPROVE_OLD, APPROVE_NOW], CURRENT, required=True) is (
        ReviewState.APPROVED
    )
    assert review_state([APPROVE_NOW], OLD, required=True) is ReviewState.STALE


# -- dependencies -----------------------------------------------------------------------

A, B, C = ("a", "0001"), ("b", "0001"), ("c", "0001")


def item(key, phase=Phase.PRE_DEPLOY, risk=Risk.SAFE, deps=(), reviews=()):
    return GateItem(key, CURRENT, risk, phase, dependencies=deps, reviews=reviews)


POST, PRE, ALWAYS = Phase.POST_DEPLOY, Phase.PRE_DEPLOY, Phase.ALWAYS
RUN, DEFERRED, BLOCKED = Verdict.RUN, Verdict.DEFERRED, Verdict.BLOCKED
DESTRUCTIVE = Risk.DESTRUCTIVE

DEPENDENCY_TABLE = [
    # parent, child's phase, requested phase → parent's verdict, child's verdict
    (item(A, POST), PRE, RequestedPhase.PRE, DEFERRED, BLOCKED),
    (item(A, POST), ALWAYS, RequestedPhase.PRE, DEFERRED, DEFERRED),
    (item(A, POST), POST, RequestedPhase.PRE, DEFERRED, DEFERRED),
    (item(A, POST), PRE, RequestedPhase.POST, RUN, RUN),
    (item(A, POST), PRE, RequestedPhase.ALL, RUN, RUN),
    (item(A, risk=DESTRUCTIVE), PRE, RequestedPhase.ALL, BLOCKED, BLOCKED),
    (item(A, risk=DESTRUCTIVE), ALWAYS, RequestedPhase.POST, BLOCKED, BLOCKED),
    (item(A, risk=DESTRUCTIVE, reviews=(APPROVE_NOW,)), PRE, RequestedPhase.ALL, RUN, RUN),
    (item(A, reviews=(REJECT_NOW,)), ALWAYS, RequestedPhase.ALL, BLOCKED, BLOCKED),
]


@pytest.mark.parametrize(
    ("parent", "child_phase", "requested", "parent_verdict", "child_verdict"), DEPENDENCY_TABLE
)
@pytest.mark.parametrize("on_blocked", list(OnBlocked))
def test_dependencies(  # noqa: PLR0917
    parent, child_phase, requested, parent_verdict, child_verdict, on_blocked
):
    child = item(B, child_phase, deps=(parent.key,))
    unrelated = item(C)
    result = decide([parent, child, unrelated], GatePolicy(Risk.DESTRUCTIVE, requested, on_blocked))
    verdicts = {d.key: d.verdict for d in result.decisions}
    assert verdicts == {A: parent_verdict, B: child_verdict, C: Verdict.RUN}
    blocked = Verdict.BLOCKED in verdicts.values()
    assert result.stopped is (blocked and on_blocked is OnBlocked.STOP)
    if result.stopped:
        assert result.to_run == ()
    else:
        assert C in result.to_run
        assert (B in result.to_run) is (child_verdict is Verdict.RUN)
    if child_verdict is not Verdict.RUN and parent_verdict is not Verdict.RUN:
        (decision,) = [d for d in result.decisions if d.key == B]
        assert decision.held_by == (A,)
        assert "a.0001" in " ".join(decision.reasons)


def test_a_pre_deploy_migration_behind_a_post_deploy_one_says_why():
    result = decide(
        [item(A, Phase.POST_DEPLOY), item(B, deps=(A,))],
        GatePolicy(phase=RequestedPhase.PRE),
    )
    (blocked,) = result.blocked
    assert blocked.key == B
    assert "pre-deploy migration but depends on a.0001" in blocked.reasons[0]
    assert "cannot run before the new code rolls out" in blocked.reasons[0]


def test_blocked_propagates_through_a_chain():
    chain = [
        item(A, risk=Risk.DESTRUCTIVE),
        item(B, Phase.ALWAYS, deps=(A,)),
        item(C, Phase.ALWAYS, deps=(B,)),
    ]
    result = decide(chain, GatePolicy(on_blocked=OnBlocked.APPLY_UNBLOCKED))
    assert [d.verdict for d in result.decisions] == [Verdict.BLOCKED] * 3
    assert result.to_run == ()
    assert not result.stopped


# -- the older package's delayed after_deploy ---------------------------------------------


@pytest.mark.parametrize(
    ("detected", "delay", "verdict"),
    [
        (None, timedelta(days=1), Verdict.DEFERRED),  # never seen: the delay has not started
        (NOW - timedelta(hours=1), timedelta(days=1), Verdict.DEFERRED),
        (NOW - timedelta(days=1), timedelta(days=1), Verdict.RUN),  # exactly due
        (NOW - timedelta(days=2), timedelta(days=1), Verdict.RUN),
        (NOW - timedelta(days=2), None, Verdict.DEFERRED),  # no delay: waits for post
    ],
)
def test_after_deploy_delay(detected, delay, verdict):
    delayed = GateItem(A, CURRENT, Risk.SAFE, Phase.POST_DEPLOY, delay=delay, detected=detected)
    result = decide([delayed], GatePolicy(phase=RequestedPhase.PRE, now=NOW))
    assert result.decisions[0].verdict is verdict
