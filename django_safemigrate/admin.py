"""The ledger and the governed migrations in the Django admin.

The ledger (runs, migration records) is read-only: it is a record, not a form.
Governed migrations are read-only too; a reviewer with the ``decide_migration``
permission approves or rejects one from its page, and each decision is a new,
append-only :class:`~django_safemigrate.models.Review` row.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.http.response import HttpResponseBase, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from django_safemigrate.enums import Decision, GovernedStatus, MigrationOutcome
from django_safemigrate.models import GovernedMigration, MigrationRecord, Review, Run


class ReadOnlyAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class MigrationRecordInline(admin.TabularInline):  # type: ignore[type-arg]
    model = MigrationRecord
    fields = ("app_label", "name", "outcome", "duration", "checksum", "error")
    readonly_fields = ("app_label", "name", "outcome", "duration", "checksum", "error")
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def _governance(ungoverned: str | None) -> SafeString:
    """A run's governance: "gated", or a warning badge with what it went without."""
    if not ungoverned:
        return format_html("{}", "gated")
    return format_html("<strong>ungoverned:</strong> {}", ungoverned)


class GovernanceFilter(admin.SimpleListFilter):
    title = "governance"
    parameter_name = "governance"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("gated", "gated"), ("ungoverned", "ungoverned")]

    def queryset(self, request: HttpRequest, queryset: Any) -> Any:
        field = "ungoverned" if queryset.model is Run else "run__ungoverned"
        empty = Q(**{f"{field}__isnull": True}) | Q(**{field: ""})
        if self.value() == "gated":
            return queryset.filter(empty)
        if self.value() == "ungoverned":
            return queryset.exclude(empty)
        return queryset


@admin.register(Run)
class RunAdmin(ReadOnlyAdmin):
    list_display = [
        "started_at",
        "command",
        "database",
        "user",
        "host",
        "pid",
        "outcome",
        "exit_code",
        "governance",
    ]
    list_filter = ["outcome", GovernanceFilter, "command", "database"]
    search_fields = ["host", "user", "argv", "message", "ungoverned"]
    date_hierarchy = "started_at"
    inlines = [MigrationRecordInline]

    @admin.display(description="governance")
    def governance(self, obj: Run) -> SafeString:
        return _governance(obj.ungoverned)


@admin.register(MigrationRecord)
class MigrationRecordAdmin(ReadOnlyAdmin):
    list_display = ["started_at", "app_label", "name", "outcome", "duration", "run", "governance"]
    list_filter = ["outcome", GovernanceFilter, "app_label"]
    search_fields = ["app_label", "name", "checksum", "error"]
    list_select_related = ["run"]
    readonly_fields = ["run_by", "governance"]

    @admin.display(description="governance")
    def governance(self, obj: MigrationRecord) -> SafeString:
        return _governance(obj.run.ungoverned)

    @admin.display(description="run by")
    def run_by(self, obj: MigrationRecord) -> str:
        run = obj.run
        return f"{run.user}@{run.host} (pid {run.pid}): {run.argv}"


def _badge(kind: str, value: str, label: str) -> SafeString:
    return format_html('<span class="sm-badge sm-{}-{}">{}</span>', kind, value, label)


def _short(checksum: str) -> str:
    """``sha256:0123456789ab…``: enough to tell versions apart in a list."""
    algorithm, _, digest = checksum.partition(":")
    return f"{algorithm}:{digest[:12]}…" if digest else checksum[:19]


@admin.register(GovernedMigration)
class GovernedMigrationAdmin(ReadOnlyAdmin):
    """What ``safemigrate`` held back or wants reviewed, and the reviewers' decisions."""

    change_list_template = "admin/django_safemigrate/governedmigration/change_list.html"
    change_form_template = "admin/django_safemigrate/governedmigration/change_form.html"
    list_display = [
        "app_label",
        "name",
        "status_badge",
        "risk_badge",
        "phase",
        "last_seen",
        "applied_at",
    ]
    list_display_links = ["app_label", "name"]
    list_filter = ["status", "risk", "phase", "app_label"]
    search_fields = ["app_label", "name", "checksum"]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "migration",
                    "status_badge",
                    "risk_badge",
                    "phase",
                    "phase_reason",
                    "review_required",
                    "blocked_reason",
                ]
            },
        ),
        (
            "This version",
            {"fields": ["checksum", "path", "database"]},
        ),
        (
            "When",
            {"fields": ["first_seen", "last_seen", "detected", "applied_at"]},
        ),
    ]
    readonly_fields = [
        "migration",
        "status_badge",
        "risk_badge",
        "phase",
        "phase_reason",
        "review_required",
        "blocked_reason",
        "checksum",
        "path",
        "database",
        "first_seen",
        "last_seen",
        "detected",
        "applied_at",
    ]

    @admin.display(description="migration")
    def migration(self, obj: GovernedMigration) -> str:
        return f"{obj.app_label}.{obj.name}"

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj: GovernedMigration) -> SafeString:
        return _badge("status", obj.status, obj.get_status_display())

    @admin.display(description="risk", ordering="risk")
    def risk_badge(self, obj: GovernedMigration) -> SafeString:
        return _badge("risk", obj.risk, obj.risk)

    @admin.display(description="database")
    def database(self, obj: GovernedMigration) -> str:
        database = (obj.analysis or {}).get("database") or {}
        alias = database.get("alias") or "?"
        version = database.get("server_version")
        return f"{alias} (PostgreSQL {version})" if version else str(alias)

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
        obj = self.get_object(request, unquote(object_id))
        context = dict(extra_context or {})
        if obj is not None:
            context.update(self.review_context(request, obj))
        return super().change_view(request, object_id, form_url, context)

    def review_context(self, request: HttpRequest, obj: GovernedMigration) -> dict[str, Any]:
        analysis = obj.analysis if isinstance(obj.analysis, dict) else {}
        history = [
            {
                "review": review,
                "other_version": review.checksum != obj.checksum,
                "short_checksum": _short(review.checksum),
            }
            for review in obj.reviews.order_by("-created_at", "-id")
        ]
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
        return {
            "governed": obj,
            "findings": analysis.get("findings") or [],
            "operations": analysis.get("operations") or [],
            "steps": analysis.get("steps") or [],
            "tables": analysis.get("tables") or [],
            "history": history,
            "bypasses": list(bypasses),
            "can_decide": self.has_decide_permission(request),
            "decide_url": reverse(
                f"{self.admin_site.name}:{self.opts.app_label}_{self.opts.model_name}_decide",
                args=[obj.pk],
            ),
            "needs_decision": obj.status
            in (GovernedStatus.PENDING_REVIEW.value, GovernedStatus.REJECTED.value),
        }

    def has_decide_permission(self, request: HttpRequest) -> bool:
        from django_safemigrate.governance.store import PERMISSION

        user: Any = request.user
        return bool(user.is_active and user.has_perm(PERMISSION))

    def decide_view(self, request: HttpRequest, object_id: str) -> HttpResponseBase:
        """Record an approval or a rejection posted from the migration's page."""
        from django_safemigrate.governance.store import decide_migration

        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        # Checked here and again by the store: the button's absence is not the guard.
        if not self.has_decide_permission(request):
            raise PermissionDenied
        obj = get_object_or_404(GovernedMigration, pk=_pk(object_id))
        back = HttpResponseRedirect(
            reverse(
                f"{self.admin_site.name}:{self.opts.app_label}_{self.opts.model_name}_change",
                args=[obj.pk],
            )
        )
        try:
            decision = Decision(request.POST.get("decision", "").strip().lower())
        except ValueError:
            self.message_user(request, "Choose Approve or Reject.", messages.ERROR)
            return back
        note = request.POST.get("note", "").strip()
        if not note:
            self.message_user(
                request, "A decision needs a note saying why; nothing was recorded.", messages.ERROR
            )
            return back
        checksum = request.POST.get("checksum", "")
        if checksum != obj.checksum:
            self.message_user(
                request,
                f"{obj} changed while you were reading it (it is now {_short(obj.checksum)}, "
                f"you reviewed {_short(checksum) if checksum else 'no version'}); nothing was "
                "recorded. Read the current version and decide again.",
                messages.ERROR,
            )
            return back
        try:
            decide_migration(
                obj,
                user=request.user,
                decision=decision,
                note=note,
                source="admin",
                checksum=checksum,
            )
        except ValueError as exc:
            self.message_user(request, f"{exc} Nothing was recorded.", messages.ERROR)
            return back
        verb = "Approved" if decision is Decision.APPROVE else "Rejected"
        self.message_user(request, f"{verb} {obj} (version {_short(checksum)}).", messages.SUCCESS)
        return back


def _pk(object_id: str) -> int:
    try:
        return int(unquote(object_id))
    except ValueError:
        raise Http404("No such migration.") from None


@admin.register(Review)
class ReviewAdmin(ReadOnlyAdmin):
    """Every decision ever recorded; append-only, so there is nothing to edit."""

    list_display = [
        "created_at",
        "migration",
        "decision",
        "reviewer_name",
        "source",
        "origin",
        "version",
    ]
    list_filter = ["decision", "source"]
    search_fields = ["migration__app_label", "migration__name", "reviewer_name", "note", "host"]
    list_select_related = ["migration"]
    fields = readonly_fields = (
        "migration",
        "decision",
        "checksum",
        "reviewer_name",
        "reviewer_pk",
        "source",
        "os_user",
        "host",
        "created_at",
        "note",
    )

    @admin.display(description="from")
    def origin(self, obj: Review) -> str:
        """Where a command-line decision was typed (an admin one is the logged-in user)."""
        return f"{obj.os_user}@{obj.host}" if obj.source == "command" else "the admin"

    @admin.display(description="version", ordering="checksum")
    def version(self, obj: Review) -> str:
        return _short(obj.checksum)

    #: No bulk actions: decisions are neither deleted nor changed.
    actions = None
