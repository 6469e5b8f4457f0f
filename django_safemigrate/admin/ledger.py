"""The ledger and the decisions in the Django admin: records, readable, never editable."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import Q
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.safestring import SafeString

from django_safemigrate.models import Archive, MigrationRecord, Review, Run


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
