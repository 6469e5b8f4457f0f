"""The ledger in the Django admin, read-only: it is a record, not a form."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from django_safemigrate.models import MigrationRecord, Run


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


@admin.register(Run)
class RunAdmin(ReadOnlyAdmin):
    list_display = ["started_at", "command", "database", "host", "pid", "outcome", "exit_code"]
    list_filter = ["outcome", "command", "database"]
    search_fields = ["host", "argv", "message"]
    date_hierarchy = "started_at"
    inlines = [MigrationRecordInline]


@admin.register(MigrationRecord)
class MigrationRecordAdmin(ReadOnlyAdmin):
    list_display = ["started_at", "app_label", "name", "outcome", "duration", "run"]
    list_filter = ["outcome", "app_label"]
    search_fields = ["app_label", "name", "checksum", "error"]
    list_select_related = ["run"]
