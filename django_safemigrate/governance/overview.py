"""What the review screen says about a governed migration: where it stands and why.

Read from what ``safemigrate`` kept when it judged the plan (the gate's verdict and
what held each migration back), the decisions recorded since (read live, so a
decision shows at once) and the migration files the site runs (their order, and
what depends on what). No HTML here: the admin renders it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from django.db.migrations.graph import MigrationGraph

from django_safemigrate.enums import ReviewState, Risk
from django_safemigrate.exceptions import SafemigrateError
from django_safemigrate.governance.history import History

Key = tuple[str, str]


@dataclasses.dataclass(frozen=True)
class Graph:
    """The migration files this site runs, in plan order (``None``: they did not load)."""

    graph: MigrationGraph | None
    error: str = ""

    def order(self) -> list[str]:
        """Every migration as ``app_label.name``, in the order ``migrate`` applies them."""
        if self.graph is None:
            return []
        seen: dict[Key, None] = {}
        for leaf in self.graph.leaf_nodes():
            for node in self.graph.forwards_plan(leaf):
                seen.setdefault(node, None)
        return [".".join(key) for key in seen]

    def dependents(self, key: Key) -> list[Key]:
        """The migrations that depend on ``key``, directly or through others, in plan order."""
        if self.graph is None or key not in self.graph.node_map:
            return []
        found: set[Key] = set()
        todo = [key]
        while todo:
            for child in self.graph.node_map[todo.pop()].children:
                if child.key not in found:
                    found.add(child.key)
                    todo.append(child.key)
        order = {name: i for i, name in enumerate(self.order())}
        return sorted(found, key=lambda k: order.get(".".join(k), len(order)))

    def direct_dependents(self, key: Key) -> set[Key]:
        if self.graph is None or key not in self.graph.node_map:
            return set()
        return {child.key for child in self.graph.node_map[key].children}


def read_graph() -> Graph:
    """The migration graph from the files, without touching a database."""
    from django_safemigrate.plan import load_disk_migrations

    try:
        return Graph(load_disk_migrations().graph)
    except SafemigrateError as exc:
        return Graph(None, str(exc))


def review_required(risk: str, review_at: Risk | None) -> bool:
    """Whether a migration of ``risk`` needs a review under the setting ``review_at``."""
    try:
        level = Risk(risk)
    except ValueError:
        return True
    return review_at is not None and level.rank >= review_at.rank


def requiring(review_at: Risk | None) -> list[str]:
    """The risks that need a review under ``review_at``, lowest first."""
    return [risk.value for risk in Risk if review_required(risk.value, review_at)]


def needs_review(migration: Any, settings: Any) -> bool:
    """Whether the current settings ask for a review of a kept ``GovernedMigration``: by
    its risk, the kinds of its findings (``REVIEW`` as a list), and its scope (an
    installed package's migration needs none unless ``GOVERN_PACKAGES`` says so)."""
    from django_safemigrate.enums import Kind
    from django_safemigrate.governance.gate import review_reason
    from django_safemigrate.scope import governed

    analysis = migration.analysis if isinstance(migration.analysis, dict) else {}
    if not governed(migration.app_label, analysis.get("package"), settings):
        return False
    try:
        risk = Risk(migration.risk)
    except ValueError:
        return True  # a record this version cannot read: ask a person
    kinds = {Kind(k) for k in analysis.get("kinds", ()) if k in Kind._value2member_map_}
    return review_reason(risk, kinds, settings.review, settings.review_kinds) is not None


def needs_review_q(settings: Any) -> Any:
    """:func:`needs_review` as a query on ``GovernedMigration``."""
    from django.db.models import Q

    required = Q(risk__in=requiring(settings.review))
    for kind in sorted(settings.review_kinds):
        required |= Q(analysis__kinds__contains=[kind.value])
    known = [risk.value for risk in Risk]
    required |= ~Q(risk__in=known)
    if settings.govern_packages is True:
        return required
    in_scope = Q(analysis__package__isnull=True) | Q(analysis__package=None)
    if settings.govern_packages:
        in_scope |= Q(app_label__in=sorted(settings.govern_packages))
    return required & in_scope


@dataclasses.dataclass(frozen=True)
class State:
    """Where one migration stands, in a few words and the reasons behind them."""

    #: A closed set, for the badge: applied, rejected, needs_review, stale, waiting,
    #: deferred, approved, ready.
    kind: str
    label: str
    #: Full sentences: who rejected it and why, which migration it waits for, …
    details: tuple[str, ...] = ()
    #: The migrations it waits for (``app_label.name``).
    waits_for: tuple[str, ...] = ()


def state_of(
    governed: Any,
    history: History,
    *,
    required: bool,
    others: Mapping[str, Any] | None = None,
) -> State:
    """Where ``governed`` stands now.

    ``history``: its decisions read for its current checksum under the current
    setting (``required``); ``others``: the governed migrations by ``app_label.name``,
    to say what a migration it waits for is waiting for in turn.
    """
    gate = _gate(governed)
    details: list[str] = []
    held_by = tuple(str(k) for k in gate.get("held_by") or ())
    if governed.applied_at is not None:
        when = _when(governed.applied_at)
        if history.state is ReviewState.REJECTED:
            details.append(
                "It was applied although a rejection stands (see the ledger's runs without "
                "governance)."
            )
        if getattr(governed, "direction", "forward") == "backward":
            return State("applied", "Rolled back", (f"Unapplied {when}.", *details))
        return State("applied", "Applied", (f"Applied {when}.", *details))
    state = history.state
    decision = history.in_force
    if state is ReviewState.REJECTED and decision is not None:
        details.append(
            f"Rejected by {decision.reviewer_name} {_when(decision.created_at)}: "
            f"{_sentence(decision.note)} It does not run until someone approves it."
        )
        return State("rejected", "Rejected", tuple(details), held_by)
    waiting = [_waits_for(name, others or {}) for name in held_by]
    if state is ReviewState.PENDING:
        if getattr(governed, "direction", "forward") == "backward":
            details.append(
                f"Unapplying it is {governed.risk}: a reviewer must approve the rollback of "
                "this version before safemigrate unapplies it."
            )
        else:
            details.append(
                f"It is {governed.risk}: a reviewer must approve this version before "
                "safemigrate applies it."
            )
        details += waiting
        return State("needs_review", "Needs a review", tuple(details), held_by)
    if state is ReviewState.STALE:
        details.append(
            "An approval was given for another version of the file; the file changed "
            "since, so that approval no longer counts. This version needs a review."
        )
        details += waiting
        return State("stale", "Needs a new review", tuple(details), held_by)
    if held_by:
        names = ", ".join(held_by)
        if gate.get("verdict") == "deferred":
            return State("deferred", f"Waits for {names}", tuple(waiting), held_by)
        return State("waiting", f"Waits for {names}", tuple(waiting), held_by)
    if gate.get("verdict") == "deferred":
        return State(
            "deferred",
            "Waits for the post-deploy phase",
            tuple(str(r) for r in gate.get("reasons") or ()),
        )
    if state is ReviewState.APPROVED and decision is not None:
        details.append(
            f"Approved by {decision.reviewer_name} {_when(decision.created_at)}: "
            f"{_sentence(decision.note)}"
        )
        return State("approved", "Approved", (*details, _next_run(gate)))
    return State("ready", "Ready", (_next_run(gate),))


def _waits_for(name: str, others: Mapping[str, Any]) -> str:
    other = others.get(name)
    why = ""
    if other is not None:
        why = {
            "rejected": ", which was rejected",
            "pending_review": ", which needs a review",
            "approved": ", which is approved and runs in the next deploy",
            "applied": ", which is applied now: the next deploy runs this one too",
        }.get(other.status, "")
        gate = _gate(other)
        if other.status == "not_required" and gate.get("held_by"):
            why = f", which waits for {', '.join(gate['held_by'])}"
    return f"It depends on {name}{why}; it runs only after it."


def _next_run(gate: Mapping[str, Any]) -> str:
    if gate.get("stopped"):
        return (
            "It may run, but the last run stopped the whole plan for another migration; "
            "it runs in the next deploy that is not blocked."
        )
    return "Nothing holds it back: it runs in the next deploy."


def _gate(governed: Any) -> Mapping[str, Any]:
    analysis = governed.analysis if isinstance(governed.analysis, dict) else {}
    gate = analysis.get("gate")
    return gate if isinstance(gate, dict) else {}


def _sentence(text: str) -> str:
    text = " ".join(text.split())
    return text if text.endswith((".", "!", "?")) else f"{text}."


def _when(moment: Any) -> str:
    from django.utils import timezone

    local = timezone.localtime(moment) if timezone.is_aware(moment) else moment
    return f"on {local:%Y-%m-%d %H:%M}"


def held_back(rows: Sequence[Any]) -> dict[str, Any]:
    """``app_label.name`` → row, for :func:`state_of`'s ``others``."""
    return {f"{row.app_label}.{row.name}": row for row in rows}
