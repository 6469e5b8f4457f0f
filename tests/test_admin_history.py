"""What became of each decision, as the review screen's history says it.

The screen and the gate read the same history: for every sequence of decisions the
decision the screen marks "in force" is the one the gate's state comes from.
"""

from __future__ import annotations

import itertools
import types

import pytest

from django_safemigrate.enums import ReviewState
from django_safemigrate.governance.history import Standing, read_history

CURRENT, OLD = "sha256:current", "sha256:old"


def reviews(*decisions: tuple[str, str]) -> list[types.SimpleNamespace]:
    return [types.SimpleNamespace(decision=d, checksum=c) for d, c in decisions]


def standings(*decisions: tuple[str, str]) -> list[Standing]:
    """Oldest first, as given."""
    history = read_history(reviews(*decisions), CURRENT, required=True)
    return [entry.standing for entry in reversed(history.entries)]


def test_reject_approve_then_edit_answers_the_rejection_and_outdates_the_approval():
    history = read_history(reviews(("reject", OLD), ("approve", OLD)), CURRENT, required=True)
    assert history.state is ReviewState.STALE
    assert [e.standing for e in reversed(history.entries)] == [
        Standing.ANSWERED,
        Standing.OTHER_VERSION,
    ]
    assert history.in_force is None


@pytest.mark.parametrize(
    ("decisions", "expected"),
    [
        ([("approve", CURRENT)], [Standing.IN_FORCE]),
        ([("reject", CURRENT)], [Standing.IN_FORCE]),
        ([("approve", CURRENT), ("reject", CURRENT)], [Standing.OVERRIDDEN, Standing.IN_FORCE]),
        ([("reject", CURRENT), ("approve", CURRENT)], [Standing.ANSWERED, Standing.IN_FORCE]),
        ([("reject", CURRENT), ("approve", OLD)], [Standing.IN_FORCE, Standing.OTHER_VERSION]),
        (
            [("reject", OLD), ("reject", CURRENT)],
            [Standing.STANDS, Standing.IN_FORCE],
        ),
        (
            [("approve", CURRENT), ("approve", CURRENT)],
            [Standing.REPEATED, Standing.IN_FORCE],
        ),
    ],
)
def test_standings(decisions, expected):
    assert standings(*decisions) == expected


def test_the_decision_in_force_always_matches_the_gate_state():
    options = [(d, c) for d in ("approve", "reject") for c in (CURRENT, OLD, "sha256:older")]
    checked = 0
    for length in range(5):
        for sequence in itertools.product(options, repeat=length):
            for required in (True, False):
                history = read_history(reviews(*sequence), CURRENT, required=required)
                decided = history.state in (ReviewState.APPROVED, ReviewState.REJECTED)
                assert (history.in_force is not None) is decided, sequence
                if decided:
                    assert (history.in_force.decision == "approve") is (
                        history.state is ReviewState.APPROVED
                    ), sequence
                checked += 1
    assert checked == 2 * sum(6**n for n in range(5))
