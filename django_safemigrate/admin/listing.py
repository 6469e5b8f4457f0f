"""The review list's parts: its filters, its order, and the ``REVIEW`` setting in words."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db import connection
from django.db.models import IntegerField, Q
from django.db.models.expressions import RawSQL
from django.http import HttpRequest

from django_safemigrate.enums import GovernedStatus, Risk
from django_safemigrate.governance.overview import needs_review_q, requiring
from django_safemigrate.models import GovernedMigration


def review_at() -> Risk | None:
    from django_safemigrate.conf import get_settings

    return get_settings().review


def review_setting() -> str:
    """The current ``REVIEW`` setting in words, for the screen's explanations."""
    from django_safemigrate.conf import get_settings

    settings = get_settings()
    if settings.legacy_mode is not None:
        return (
            f"SAFEMIGRATE = {settings.legacy_mode!r} (the older package's mode): no migration "
            "needs a review."
        )
    risks = requiring(settings.review)
    kinds = sorted(settings.review_kinds)
    if not risks and not kinds:
        return "REVIEW = 'never': no migration needs a review."
    what = [f"{' and '.join(risks)} migrations"] if risks else []
    what += [f"migrations that {kind.phrase}" for kind in kinds]
    setting = [*(risks[:1] if risks else []), *(kind.value for kind in kinds)]
    shown = repr(setting[0]) if len(setting) == 1 and not kinds else repr(setting)
    scope = (
        ""
        if settings.govern_packages is True
        else " Migrations of installed packages need none (GOVERN_PACKAGES)."
    )
    return (
        f"REVIEW = {shown}: {'; '.join(what)} need an approval before safemigrate applies "
        f"them.{scope}"
    )


class PlanPosition(RawSQL):
    """A migration's place in the plan ``migrate`` follows (``NULL``: no such file here)."""

    def __init__(self, order: list[str]) -> None:
        table = connection.ops.quote_name(GovernedMigration._meta.db_table)
        super().__init__(
            f"array_position(%s::text[], {table}.app_label || '.' || {table}.name)",
            (order,),
            output_field=IntegerField(),
        )


class ReviewFilter(admin.SimpleListFilter):
    """Where migrations stand with their reviewers, under the current ``REVIEW`` setting."""

    title = "review"
    parameter_name = "review"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [
            ("needed", "needs a review"),
            ("approved", "approved"),
            ("rejected", "rejected"),
            ("not_required", "not required"),
        ]

    def queryset(self, request: HttpRequest, queryset: Any) -> Any:
        from django_safemigrate.conf import get_settings

        required = needs_review_q(get_settings())
        decided = Q(status__in=[GovernedStatus.APPROVED.value, GovernedStatus.REJECTED.value])
        if self.value() == "needed":
            return queryset.filter(required, applied_at__isnull=True).exclude(decided)
        if self.value() in ("approved", "rejected"):
            return queryset.filter(status=self.value())
        if self.value() == "not_required":
            return queryset.exclude(required).exclude(decided)
        return queryset


class AppliedFilter(admin.SimpleListFilter):
    title = "applied"
    parameter_name = "applied"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("no", "not yet (waiting)"), ("yes", "applied")]

    def queryset(self, request: HttpRequest, queryset: Any) -> Any:
        if self.value() == "no":
            return queryset.filter(applied_at__isnull=True)
        if self.value() == "yes":
            return queryset.filter(applied_at__isnull=False)
        return queryset
