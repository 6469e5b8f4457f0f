"""Where each recorded decision stands, for the review screen.

The gate needs one answer (:func:`~django_safemigrate.governance.gate.review_state`);
a reviewer reading the history needs to know what became of each decision: the one
in force, a rejection a later approval answered, an approval a later rejection
overrode, an approval for another version of the file. Both read the history with
the same rules, so the screen cannot tell a different story from the deploy.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Sequence
from typing import Any

from django_safemigrate.enums import Decision, ReviewState
from django_safemigrate.governance.gate import PastReview, review_state


class Standing(enum.StrEnum):
    """What became of one decision."""

    #: The decision the current review state comes from.
    IN_FORCE = "in_force"
    #: A rejection a later approval (of the version it rejected, or of the current one)
    #: answered.
    ANSWERED = "answered"
    #: An approval of the current version that a later rejection overrode.
    OVERRIDDEN = "overridden"
    #: An approval of another version of the file: it no longer counts.
    OTHER_VERSION = "other_version"
    #: A rejection that still stands but is not the latest one.
    STANDS = "stands"
    #: An approval of the current version made again later: the later one is in force.
    REPEATED = "repeated"


@dataclasses.dataclass(frozen=True)
class Entry:
    """One decision, as recorded (``review``: the model row) and what became of it."""

    review: Any
    standing: Standing
    #: The later decision that answered or overrode it.
    by: Any = None


@dataclasses.dataclass(frozen=True)
class History:
    state: ReviewState
    #: Newest first, as the screen lists them.
    entries: tuple[Entry, ...]

    @property
    def in_force(self) -> Any:
        """The decision the state comes from (``None``: no decision counts)."""
        return next((e.review for e in self.entries if e.standing is Standing.IN_FORCE), None)


def read_history(reviews: Sequence[Any], checksum: str, *, required: bool) -> History:
    """``reviews`` (model rows with ``decision`` and ``checksum``, oldest first) for the
    version ``checksum`` of the file."""
    past = [PastReview(Decision(r.decision), r.checksum) for r in reviews]
    state = review_state(past, checksum, required=required)
    standing: dict[int, Standing] = {}
    by: dict[int, Any] = {}
    for i, review in enumerate(reviews):
        if review.decision != Decision.REJECT.value:
            continue
        answer = next(
            (
                later
                for later in reviews[i + 1 :]
                if later.decision == Decision.APPROVE.value
                and later.checksum in (review.checksum, checksum)
            ),
            None,
        )
        standing[i] = Standing.ANSWERED if answer is not None else Standing.STANDS
        by[i] = answer
    for i, review in enumerate(reviews):
        if review.decision == Decision.REJECT.value:
            continue
        if review.checksum != checksum:
            standing[i] = Standing.OTHER_VERSION
            continue
        # Overridden by a later rejection that still stands (one a still later approval
        # answered overrides nothing).
        overriding = next(
            (
                later
                for j, later in enumerate(reviews[i + 1 :], start=i + 1)
                if standing.get(j) is Standing.STANDS
            ),
            None,
        )
        standing[i] = Standing.OVERRIDDEN if overriding is not None else Standing.REPEATED
        by[i] = overriding
    # The decision the state comes from: the latest standing rejection, else the latest
    # approval of this version.
    if state is ReviewState.REJECTED:
        chosen = [i for i, s in standing.items() if s is Standing.STANDS]
    elif state is ReviewState.APPROVED:
        chosen = [i for i, s in standing.items() if s is Standing.REPEATED]
    else:
        chosen = []
    if chosen:
        standing[chosen[-1]] = Standing.IN_FORCE
    entries = [Entry(r, standing[i], by.get(i)) for i, r in enumerate(reviews)]
    return History(state, tuple(reversed(entries)))
