"""The review screen: every migration ``safemigrate`` judged, and the decision form.

The list follows the plan (the order ``migrate`` applies migrations in), the
migrations still waiting first, each with where it stands in words: which migration
it waits for, who rejected it and why, whether the current ``REVIEW`` setting asks
for a review. A migration's page shows what a reviewer reads before deciding: the
findings with their hints, each operation's SQL and the Python it runs, each step's
exact statements with its locks and timeouts, the sizes of the tables, the run that
judged it, what depends on it and every decision (who, when, why, and what became
of it). Users with the ``decide_migration`` permission approve or reject it there;
the others are told which permission that needs.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.db.models import F, Q
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from django_safemigrate.admin.decide import DecisionMixin, permission_name
from django_safemigrate.admin.ledger import ReadOnlyAdmin, short_checksum
from django_safemigrate.admin.listing import (
    AppliedFilter,
    PlanPosition,
    ReviewFilter,
    review_setting,
)
from django_safemigrate.conf import get_settings
from django_safemigrate.enums import Direction, GovernedStatus, MigrationOutcome, ReviewState
from django_safemigrate.governance.history import History, read_history
from django_safemigrate.governance.overview import (
    Graph,
    State,
    held_back,
    needs_review,
    needs_review_q,
    read_graph,
    state_of,
)
from django_safemigrate.governance.store import PERMISSION
from django_safemigrate.models import GovernedMigration, MigrationRecord, Run
from django_safemigrate.scope import governed


@dataclasses.dataclass
class _Page:
    """What one request's page reads once: the migration files, the waiting migrations."""

    graph: Graph | None = None
    others: dict[str, GovernedMigration] | None = None


#: The page being rendered (the admin instance is shared by every request and thread).
_page: ContextVar[_Page | None] = ContextVar("safemigrate_review_page", default=None)


@contextlib.contextmanager
def _rendering() -> Iterator[None]:
    token = _page.set(_Page())
    try:
        yield
    finally:
        _page.reset(token)


def _current() -> _Page:
    return _page.get() or _Page()


def _graph() -> Graph:
    page = _current()
    if page.graph is None:
        page.graph = read_graph()
    return page.graph


def _others() -> dict[str, GovernedMigration]:
    page = _current()
    if page.others is None:
        waiting = GovernedMigration.objects.filter(
            applied_at__isnull=True, direction=Direction.FORWARD.value
        )
        page.others = held_back(list(waiting))
    return page.others


def _badge(kind: str, value: str, label: str) -> SafeString:
    return format_html('<span class="sm-badge sm-{}-{}">{}</span>', kind, value, label)


@admin.register(GovernedMigration)
class GovernedMigrationAdmin(DecisionMixin, ReadOnlyAdmin):
    """Every migration ``safemigrate`` judged, where it stands, and the reviewers' decisions.

    The list follows the plan (the order ``migrate`` applies them in), the migrations
    still waiting first; each row says where the migration stands in words (which
    migration it waits for, who rejected it). A migration's page shows what a reviewer
    reads before deciding, and the decision form to users with the permission.
    """

    change_list_template = "admin/django_safemigrate/governedmigration/change_list.html"
    change_form_template = "admin/django_safemigrate/governedmigration/change_form.html"
    list_display = ["position", "migration", "risk_and_review", "state", "phase"]
    list_display_links = ["migration"]
    list_filter = [AppliedFilter, ReviewFilter, "risk", "phase", "app_label"]
    search_fields = ["app_label", "name", "checksum"]
    list_per_page = 100
    fieldsets = [
        (None, {"fields": ["state", "risk_badge", "review", "phase", "phase_reason"]}),
        ("This version", {"fields": ["checksum", "path", "database"]}),
        ("Ledger", {"fields": ["judged_by", "first_seen", "last_seen", "detected", "applied"]}),
    ]
    readonly_fields = [
        "migration",
        "state",
        "risk_badge",
        "review",
        "phase",
        "phase_reason",
        "checksum",
        "path",
        "database",
        "judged_by",
        "first_seen",
        "last_seen",
        "detected",
        "applied",
    ]

    # What the page's parts read, once per request.

    def get_queryset(self, request: HttpRequest) -> Any:
        graph = _graph()
        return (
            super()
            .get_queryset(request)
            .annotate(plan_position=PlanPosition(graph.order()))
            .prefetch_related("reviews")
        )

    #: Waiting migrations first (then the applied ones, the latest first); the list's
    #: own headers mark no column as sorted by it.
    ordering = (F("applied_at").desc(nulls_first=True),)

    def get_ordering(self, request: HttpRequest) -> list[Any]:
        # Within each part, the order migrate applies them in.
        return [*self.ordering, F("plan_position").asc(nulls_last=True)]

    def history(self, obj: GovernedMigration) -> History:
        """Its decisions for its current version, under the current ``REVIEW`` setting."""
        cached: History | None = getattr(obj, "_safemigrate_history", None)
        if cached is None:
            reviews = sorted(obj.reviews.all(), key=lambda r: (r.created_at, r.pk))
            required = needs_review(obj, get_settings())
            cached = read_history(reviews, obj.checksum, required=required)
            obj._safemigrate_history = cached  # type: ignore[attr-defined]
        return cached

    def state_of(self, obj: GovernedMigration) -> State:
        return state_of(
            obj,
            self.history(obj),
            required=needs_review(obj, get_settings()),
            others=_others(),
        )

    # Columns and fields.

    @admin.display(description="#", ordering="plan_position")
    def position(self, obj: GovernedMigration) -> str:
        value = getattr(obj, "plan_position", None)
        return str(value) if value is not None else "-"

    @admin.display(description="migration", ordering="name")
    def migration(self, obj: GovernedMigration) -> SafeString:
        rollback = (
            format_html(" {}", _badge("direction", "backward", "rollback"))
            if obj.direction == Direction.BACKWARD.value
            else ""
        )
        return format_html(
            '<span class="sm-app">{}.</span><wbr><span class="sm-name">{}</span>{}',
            obj.app_label,
            obj.name,
            rollback,
        )

    @admin.display(description="state")
    def state(self, obj: GovernedMigration) -> SafeString:
        state = self.state_of(obj)
        details = format_html_join(
            "", '<p class="sm-detail-line">{}</p>', ((d,) for d in state.details)
        )
        return format_html(
            '<div class="sm-state">{}{}</div>', _badge("state", state.kind, state.label), details
        )

    @admin.display(description="risk", ordering="risk")
    def risk_badge(self, obj: GovernedMigration) -> SafeString:
        return _badge("risk", obj.risk, obj.risk)

    @admin.display(description="risk", ordering="risk")
    def risk_and_review(self, obj: GovernedMigration) -> SafeString:
        return format_html(
            '{}<p class="sm-detail-line">review: {}</p>', self.risk_badge(obj), self.review(obj)
        )

    @admin.display(description="review")
    def review(self, obj: GovernedMigration) -> SafeString:
        """Whether the current ``REVIEW`` setting asks for one, and where it stands."""
        history = self.history(obj)
        state = history.state
        if state is ReviewState.APPROVED:
            return format_html('<span class="sm-review-word">{}</span>', "approved")
        if state is ReviewState.REJECTED:
            return format_html('<span class="sm-review-word">{}</span>', "rejected")
        if needs_review(obj, get_settings()):
            word = "required, stale" if state is ReviewState.STALE else "required"
            return format_html('<strong class="sm-review-word">{}</strong>', word)
        return format_html('<span class="sm-review-word sm-quiet">{}</span>', "not required")

    @admin.display(description="checksum")
    def checksum(self, obj: GovernedMigration) -> SafeString:
        return format_html('<code class="sm-wrap">{}</code>', obj.checksum)

    @admin.display(description="file")
    def path(self, obj: GovernedMigration) -> SafeString:
        return format_html('<code class="sm-wrap">{}</code>', obj.path or "-")

    @admin.display(description="database")
    def database(self, obj: GovernedMigration) -> str:
        database = (obj.analysis or {}).get("database") or {}
        alias = database.get("alias") or "?"
        version = database.get("server_version")
        return f"{alias} (PostgreSQL {version})" if version else str(alias)

    @admin.display(description="last judged by")
    def judged_by(self, obj: GovernedMigration) -> SafeString | str:
        run = self._judging_run(obj)
        if run is None:
            return format_html("no run recorded{}", self._verdict(obj))
        url = reverse(f"{self.admin_site.name}:django_safemigrate_run_change", args=[run.pk])
        return format_html(
            '<a href="{}">run {}</a>: <code>{}</code> by {}@{} (pid {}), {}, outcome {}{}{}',
            url,
            run.pk,
            run.argv,
            run.user,
            run.host,
            run.pid,
            f"{timezone.localtime(run.started_at):%Y-%m-%d %H:%M:%S}",
            run.outcome,
            f" (exit {run.exit_code})" if run.exit_code is not None else "",
            self._verdict(obj),
        )

    def _verdict(self, obj: GovernedMigration) -> SafeString:
        gate = (obj.analysis or {}).get("gate") or {}
        reasons = gate.get("reasons") or ([obj.blocked_reason] if obj.blocked_reason else [])
        if not reasons:
            return mark_safe("")
        return format_html(
            '<p class="sm-detail-line">Its verdict{}: {}.</p>',
            f" ({gate['verdict']})" if gate.get("verdict") else "",
            "; ".join(str(r) for r in reasons),
        )

    @admin.display(description="applied")
    def applied(self, obj: GovernedMigration) -> SafeString | str:
        if obj.applied_at is None:
            return "not yet"
        record = (
            MigrationRecord.objects.using(obj._state.db)
            .filter(app_label=obj.app_label, name=obj.name, outcome=MigrationOutcome.APPLIED.value)
            .select_related("run")
            .order_by("-started_at", "-id")
            .first()
        )
        when = f"{timezone.localtime(obj.applied_at):%Y-%m-%d %H:%M:%S}"
        if record is None:
            return when
        url = reverse(f"{self.admin_site.name}:django_safemigrate_run_change", args=[record.run_id])
        return format_html('{} by <a href="{}">run {}</a>', when, url, record.run_id)

    def _judging_run(self, obj: GovernedMigration) -> Run | None:
        run_id = ((obj.analysis or {}).get("gate") or {}).get("run")
        if not isinstance(run_id, int):
            return None
        return Run.objects.using(obj._state.db).filter(pk=run_id).first()

    # The page.

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        with _rendering():
            return self._changelist(request, extra_context)

    def _changelist(
        self, request: HttpRequest, extra_context: dict[str, Any] | None
    ) -> HttpResponse:
        waiting = GovernedMigration.objects.filter(
            applied_at__isnull=True, direction=Direction.FORWARD.value
        )
        required = needs_review_q(get_settings())
        context = {
            "review_setting": review_setting(),
            "waiting_count": waiting.count(),
            "needs_review_count": waiting.filter(required)
            .exclude(status__in=[GovernedStatus.APPROVED.value, GovernedStatus.REJECTED.value])
            .count(),
            "rejected_count": waiting.filter(status=GovernedStatus.REJECTED.value).count(),
            "graph_error": _graph().error,
            **(extra_context or {}),
        }
        response = super().changelist_view(request, context)
        if isinstance(response, TemplateResponse):
            response.render()  # inside the page's context: its columns read the page's caches
        return response

    def get_urls(self) -> list[URLPattern]:
        info = self.opts.app_label, self.opts.model_name
        decide = path(
            "<path:object_id>/decide/",
            self.admin_site.admin_view(self.decide_view),
            name="{}_{}_decide".format(*info),
        )
        # Before the model's own URLs: their catch-all "<object_id>/" would take it.
        return [decide, *super().get_urls()]

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        with _rendering():
            obj = self.get_object(request, unquote(object_id))
            context = dict(extra_context or {})
            if obj is not None:
                context.update(self.review_context(request, obj))
            response = super().change_view(request, object_id, form_url, context)
            if isinstance(response, TemplateResponse):
                response.render()  # inside the page's context: its fields read its caches
            return response

    def review_context(self, request: HttpRequest, obj: GovernedMigration) -> dict[str, Any]:
        analysis = obj.analysis if isinstance(obj.analysis, dict) else {}
        history = self.history(obj)
        current = {e.review.pk for e in history.entries if e.review.checksum == obj.checksum}
        # Every time the ledger saw this migration applied (or faked) by a run that went
        # without governance: plain migrate, --fake, an older-package mode.
        bypasses = (
            MigrationRecord.objects.using(obj._state.db)
            .filter(
                app_label=obj.app_label,
                name=obj.name,
                outcome__in=[MigrationOutcome.APPLIED.value, MigrationOutcome.FAKED.value],
            )
            .exclude(Q(run__ungoverned__isnull=True) | Q(run__ungoverned=""))
            .select_related("run")
            .order_by("-started_at", "-id")
        )
        graph = _graph()
        key = (obj.app_label, obj.name)
        others = {
            f"{row.app_label}.{row.name}": row
            for row in GovernedMigration.objects.using(obj._state.db).filter(
                app_label__in={k[0] for k in graph.dependents(key)},
                direction=Direction.FORWARD.value,
            )
        }
        direct = graph.direct_dependents(key)
        dependents = [
            {
                "name": ".".join(k),
                "direct": k in direct,
                "row": others.get(".".join(k)),
                "url": self._change_url(others[".".join(k)]) if ".".join(k) in others else None,
            }
            for k in graph.dependents(key)
            if others.get(".".join(k)) is None or others[".".join(k)].applied_at is None
        ]
        state = self.state_of(obj)
        waits_for = [
            {"name": name, "url": self._change_url(row) if row is not None else None}
            for name in state.waits_for
            for row in [_others().get(name)]
        ]
        return {
            "governed": obj,
            "sm_state": state,
            "findings": analysis.get("findings") or [],
            "package": analysis.get("package"),
            "package_governed": governed(obj.app_label, analysis.get("package"), get_settings()),
            "operations": analysis.get("operations") or [],
            "steps": analysis.get("steps") or [],
            "tables": analysis.get("tables") or [],
            "history": [
                {
                    "entry": entry,
                    "review": entry.review,
                    "other_version": entry.review.pk not in current,
                    "short_checksum": short_checksum(entry.review.checksum),
                }
                for entry in history.entries
            ],
            "waits_for": waits_for,
            "dependents": dependents,
            "graph_error": graph.error,
            "bypasses": list(bypasses),
            "can_decide": self.has_decide_permission(request),
            "permission": PERMISSION,
            "permission_name": permission_name(),
            "decide_url": reverse(
                f"{self.admin_site.name}:{self.opts.app_label}_{self.opts.model_name}_decide",
                args=[obj.pk],
            ),
            "decided_before": bool(history.entries),
            "review_setting": review_setting(),
        }
