"""The ledger and the decisions in the Django admin: records, readable, never editable.

In a django-tenants project, the runs' list links to the "Tenant schemas" page: where
each schema of the fleet stands (as ``safemigrate_schemas --status`` says it) and its
last run.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import Q
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.utils.http import urlencode
from django.utils.safestring import SafeString

from django_safemigrate.models import Archive, MigrationRecord, Review, Run
from django_safemigrate.tenants import SchemaState, state_counts


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


class ArchiveInline(admin.TabularInline):  # type: ignore[type-arg]
    """The data this run's destructive steps dropped and kept (``SAFEMIGRATE['ARCHIVE']``)."""

    model = Archive
    fields = ("app_label", "name", "source", "archive", "row_count", "restore")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="dropped")
    def source(self, obj: Archive) -> str:
        return obj.source

    @admin.display(description="kept in")
    def archive(self, obj: Archive) -> str:
        return f"{obj.archive_schema}.{obj.archive_table}"

    @admin.display(description="to restore")
    def restore(self, obj: Archive) -> str:
        return f"manage.py restorearchive {obj.pk}"


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
    inlines = [MigrationRecordInline, ArchiveInline]
    change_list_template = "admin/django_safemigrate/run/change_list.html"
    #: Schemas per page of the "Tenant schemas" page.
    fleet_per_page = 100
    #: The database whose schemas that page shows.
    fleet_database = DEFAULT_DB_ALIAS

    @admin.display(description="governance")
    def governance(self, obj: Run) -> SafeString:
        return _governance(obj.ungoverned)

    def get_urls(self) -> list[URLPattern]:
        fleet = path(
            "fleet/",
            self.admin_site.admin_view(self.fleet_view),
            name=f"{self.opts.app_label}_{self.opts.model_name}_fleet",
        )
        # Before the model's own URLs: their catch-all "<object_id>/" would take it.
        return [fleet, *super().get_urls()]

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        from django_safemigrate.tenants import fleet_unavailable

        context = dict(extra_context or {})
        if fleet_unavailable(connections[self.fleet_database]) is None:
            context["fleet_url"] = self._fleet_url()
        return super().changelist_view(request, context)

    def _fleet_url(self, **query: Any) -> str:
        url = reverse(f"{self.admin_site.name}:{self.opts.app_label}_{self.opts.model_name}_fleet")
        query = {k: v for k, v in query.items() if v}
        return f"{url}?{urlencode(query)}" if query else url

    def fleet_view(self, request: HttpRequest) -> HttpResponse:
        """Each schema of the fleet: its state, the migrations it lacks, its last run.

        Reads only, whatever the request: one query lists the tenants, two read every
        schema's ``django_migrations``, one reads the ledger; never a query per schema.
        """
        from django.db.migrations.loader import MigrationLoader

        from django_safemigrate.tenants import (
            expected_migrations,
            fleet_schemas,
            fleet_states,
            fleet_summary,
            fleet_unavailable,
        )

        if request.method not in ("GET", "HEAD"):
            return HttpResponseNotAllowed(["GET", "HEAD"])
        if not self.has_view_permission(request):
            raise PermissionDenied
        connection = connections[self.fleet_database]
        context: dict[str, Any] = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Tenant schemas",
            "runs_url": reverse(
                f"{self.admin_site.name}:{self.opts.app_label}_{self.opts.model_name}_changelist"
            ),
        }
        reason = fleet_unavailable(connection)
        if reason is not None:
            return TemplateResponse(
                request,
                "admin/django_safemigrate/run/fleet_unavailable.html",
                {**context, "reason": reason},
                status=404,
            )
        expected = expected_migrations(MigrationLoader(None, ignore_no_migrations=True))
        states = fleet_states(connection, fleet_schemas(connection.alias), expected)
        context["summary"] = fleet_summary(states, connection.alias)
        context.update(self._fleet_page(states, request.GET.get("state", ""), request.GET.get("p")))
        return TemplateResponse(request, "admin/django_safemigrate/run/fleet.html", context)

    def _fleet_page(self, states: list[SchemaState], chosen: str, number: Any) -> dict[str, Any]:
        """The rows of page ``number`` of the schemas in state ``chosen`` (all: ""), the
        links to the other states and pages."""
        shown = [s for s in states if s.state == chosen] if chosen else states
        paginator = Paginator(shown, self.fleet_per_page)
        page = paginator.get_page(number)
        change = f"{self.admin_site.name}:{self.opts.app_label}_{self.opts.model_name}_change"
        rows = [
            {
                "state": item,
                "label": item.state.replace("_", " "),
                "tone": _TONES.get(item.state, "sm-state-rejected"),
                "run_url": reverse(change, args=[item.run.pk])
                if item.run is not None and item.run.pk is not None
                else None,
            }
            for item in page
        ]
        filters = [
            {"label": "all", "count": len(states), "url": self._fleet_url(), "chosen": not chosen},
            *(
                {
                    "label": state.replace("_", " "),
                    "count": count,
                    "url": self._fleet_url(state=state),
                    "chosen": state == chosen,
                }
                for state, count in state_counts(states).items()
            ),
        ]
        pages = [
            {
                "number": n,
                "url": self._fleet_url(state=chosen, p=n) if isinstance(n, int) else None,
            }
            for n in paginator.get_elided_page_range(page.number)
        ]
        return {
            "filters": filters,
            "chosen": chosen.replace("_", " "),
            "rows": rows,
            "page": page,
            "pages": pages if paginator.num_pages > 1 else [],
            "shown_count": len(shown),
        }


#: The review screen's badge colours, borrowed for the states of a schema (the others,
#: a run that did not end well, are red).
_TONES = {
    "up_to_date": "sm-state-ready",
    "pending": "sm-state-waiting",
    "running": "sm-state-waiting",
    "blocked": "sm-state-needs_review",
}


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


@admin.register(Archive)
class ArchiveAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "created_at",
        "app_label",
        "name",
        "operation",
        "source_table",
        "source_column",
        "archive_table",
        "row_count",
        "run",
    ]
    list_filter = ["operation", "app_label"]
    search_fields = ["app_label", "name", "source_table", "source_column", "archive_table"]
    list_select_related = ["run"]


def short_checksum(checksum: str) -> str:
    """``sha256:0123456789ab…``: enough to tell versions apart in a list."""
    algorithm, _, digest = checksum.partition(":")
    return f"{algorithm}:{digest[:12]}…" if digest else checksum[:19]


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
        return short_checksum(obj.checksum)

    #: No bulk actions: decisions are neither deleted nor changed.
    actions = None
