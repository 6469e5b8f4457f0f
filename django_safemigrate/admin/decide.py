"""Approving or rejecting a migration from its page in the admin."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.http import Http404, HttpRequest, HttpResponseNotAllowed
from django.http.response import HttpResponseBase, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse

from django_safemigrate.admin.ledger import short_checksum
from django_safemigrate.enums import Decision
from django_safemigrate.governance.store import PERMISSION
from django_safemigrate.models import GovernedMigration


class DecisionMixin(admin.ModelAdmin):  # type: ignore[type-arg]
    """The decision form's view, for the governed migrations' admin."""

    def _change_url(self, obj: GovernedMigration) -> str:
        return reverse(
            f"{self.admin_site.name}:{self.opts.app_label}_{self.opts.model_name}_change",
            args=[obj.pk],
        )

    def has_decide_permission(self, request: HttpRequest) -> bool:
        user: Any = request.user
        return bool(user.is_active and user.has_perm(PERMISSION))

    def decide_view(self, request: HttpRequest, object_id: str) -> HttpResponseBase:
        """Record an approval or a rejection posted from the migration's page."""
        from django_safemigrate.governance.store import decide_migration

        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        # Checked here and again by the store: the button's absence is not the guard.
        if not self.has_decide_permission(request):
            return TemplateResponse(
                request,
                "admin/django_safemigrate/governedmigration/forbidden.html",
                {
                    **self.admin_site.each_context(request),
                    "title": "You may not approve or reject migrations",
                    "permission": PERMISSION,
                    "permission_name": permission_name(),
                    "username": request.user.get_username(),
                },
                status=403,
            )
        obj = get_object_or_404(GovernedMigration, pk=_pk(object_id))
        back = HttpResponseRedirect(self._change_url(obj))
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
                f"{obj} changed while you were reading it (it is now "
                f"{short_checksum(obj.checksum)}, you reviewed "
                f"{short_checksum(checksum) if checksum else 'no version'}); nothing was "
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
        self.message_user(
            request, f"{verb} {obj} (version {short_checksum(checksum)}).", messages.SUCCESS
        )
        return back


def permission_name() -> str:
    """The permission's name as the admin's user and group pages list it."""
    from django.contrib.auth.models import Permission

    app_label, codename = PERMISSION.split(".", 1)
    found = (
        Permission.objects.filter(content_type__app_label=app_label, codename=codename)
        .values_list("name", flat=True)
        .first()
    )
    return found or "Can approve or reject migrations"


def _pk(object_id: str) -> int:
    try:
        return int(unquote(object_id))
    except ValueError:
        raise Http404("No such migration.") from None
