"""The review screen in the admin: what a reviewer sees, and who may decide.

Governed migrations and reviews are read-only in the admin; a decision is a new,
append-only review, recorded through the decision form by a user with the
``decide_migration`` permission only.
"""

from __future__ import annotations

import datetime

import pytest
from django.contrib.auth.models import Permission, User
from django.db import DatabaseError, connection, transaction
from django.urls import reverse
from django.utils import timezone

from django_safemigrate.governance.signals import migration_reviewed
from django_safemigrate.models import GovernedMigration, Review

CHECKSUM = "sha256:" + "a" * 64
OLD_CHECKSUM = "sha256:" + "b" * 64
DROP = 'ALTER TABLE "shop_item" DROP COLUMN "legacy" CASCADE'
HINT = "Stop using the field in one release and remove it from the model state only."

LIST_URL = "/admin/django_safemigrate/governedmigration/"
REVIEWS_URL = "/admin/django_safemigrate/review/"


def detail_url(governed: GovernedMigration) -> str:
    return reverse("admin:django_safemigrate_governedmigration_change", args=[governed.pk])


def decide_url(governed: GovernedMigration) -> str:
    return reverse("admin:django_safemigrate_governedmigration_decide", args=[governed.pk])


def analysis() -> dict[str, object]:
    return {
        "findings": [
            {
                "code": "SM201",
                "rule": "drop-column",
                "severity": "destructive",
                "operation_index": 0,
                "operation": "RemoveField",
                "line": 7,
                "table": "shop_item",
                "lock": "ACCESS EXCLUSIVE",
                "rewrites_table": False,
                "sql": DROP,
                "message": "DROP COLUMN legacy on shop_item deletes the column's data.",
                "hint": HINT,
                "blocking": True,
                "acknowledged": None,
                "table_rows": 1200,
                "table_bytes": 81920,
            },
            {
                "code": "SM401",
                "rule": "data-migration",
                "severity": "risky",
                "operation_index": 1,
                "operation": "RunPython",
                "line": 12,
                "table": None,
                "lock": None,
                "rewrites_table": None,
                "sql": None,
                "message": "RunPython(copy_codes) runs arbitrary Python inside a transaction.",
                "hint": "Batch it by primary key.",
                "blocking": False,
                "acknowledged": "checked: 40 rows, idempotent",
            },
        ],
        "operations": [
            {
                "index": 0,
                "operation": "RemoveField",
                "description": "Remove field legacy from item",
                "sql": [DROP + ";"],
            },
            {
                "index": 1,
                "operation": "RunPython",
                "description": "Raw Python operation",
                "sql": ["-- RunPython: runs Python code, no SQL"],
            },
        ],
        "steps": [
            {
                "index": 0,
                "kind": "transactional",
                "description": "RemoveField, RunPython",
                "locks": "lock ACCESS EXCLUSIVE, lock_timeout 5s",
            }
        ],
        "tables": [
            {"name": "shop_item", "rows": 1200, "bytes": 81920, "size": "~1,200 rows, 80 kB"}
        ],
        "database": {"alias": "default", "server_version": 16},
    }


@pytest.fixture
def governed(db) -> GovernedMigration:
    now = timezone.now()
    return GovernedMigration.objects.create(
        app_label="shop",
        name="0003_remove_item_legacy",
        checksum=CHECKSUM,
        path="shop/migrations/0003_remove_item_legacy.py",
        risk="destructive",
        phase="post_deploy",
        phase_reason="inferred: SM201 drops a column the old code still uses (shop_item)",
        status="pending_review",
        review_required=True,
        blocked_reason="needs a review (destructive) and has none",
        analysis=analysis(),
        sql=f"-- 1. Remove field legacy from item\n{DROP};",
        first_seen=now,
        last_seen=now,
    )


@pytest.fixture
def other(db) -> GovernedMigration:
    now = timezone.now()
    return GovernedMigration.objects.create(
        app_label="billing",
        name="0007_invoice_total_index",
        checksum="sha256:" + "c" * 64,
        risk="safe",
        phase="pre_deploy",
        status="applied",
        review_required=False,
        first_seen=now,
        last_seen=now,
        applied_at=now,
    )


def staff(username: str, *codenames: str) -> User:
    user = User.objects.create_user(username, password="pw", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(
            content_type__app_label="django_safemigrate", codename__in=codenames
        )
    )
    assert user.user_permissions.count() == len(codenames)
    return User.objects.get(pk=user.pk)  # no cached permissions


@pytest.fixture
def reviewer(db) -> User:
    return staff("rita", "view_governedmigration", "view_review", "decide_migration")


@pytest.fixture
def viewer(db) -> User:
    return staff("victor", "view_governedmigration", "view_review")


def page(client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, response.status_code
    return response.content.decode()


def post_decision(client, governed: GovernedMigration, **overrides: str):
    data = {"decision": "Approve", "note": "Column unused since 2.3.", "checksum": CHECKSUM}
    data.update(overrides)
    return client.post(decide_url(governed), data, follow=True)


# The list.


def test_list_shows_migrations_with_status_and_risk_badges(admin_client, governed, other):
    html = page(admin_client, LIST_URL)
    assert "0003_remove_item_legacy" in html
    assert "0007_invoice_total_index" in html
    assert '<span class="sm-badge sm-risk-destructive">destructive</span>' in html
    assert '<span class="sm-badge sm-state-needs_review">Needs a review</span>' in html
    assert '<span class="sm-badge sm-risk-safe">safe</span>' in html
    assert '<span class="sm-badge sm-state-applied">Applied</span>' in html
    assert "django_safemigrate/review.css" in html  # the screen's stylesheet
    # It is a list to read: no "Add" button, no delete action.
    assert "/governedmigration/add/" not in html
    assert "delete_selected" not in html


@pytest.mark.parametrize(
    ("query", "shown", "hidden"),
    [
        ("review=needed", "0003_remove", "0007_invoice"),
        ("review=not_required", "0007_invoice", "0003_remove"),
        ("applied=no", "0003_remove", "0007_invoice"),
        ("applied=yes", "0007_invoice", "0003_remove"),
        ("risk__exact=destructive", "0003_remove", "0007_invoice"),
        ("risk__exact=safe", "0007_invoice", "0003_remove"),
        ("phase__exact=post_deploy", "0003_remove", "0007_invoice"),
        ("app_label=billing", "0007_invoice", "0003_remove"),
        ("q=remove_item", "0003_remove", "0007_invoice"),
        ("q=billing", "0007_invoice", "0003_remove"),
        ("q=" + "c" * 20, "0007_invoice", "0003_remove"),
    ],
)
@pytest.mark.usefixtures("governed", "other")
def test_list_filters_and_search(admin_client, query, shown, hidden):
    html = page(admin_client, f"{LIST_URL}?{query}")
    assert shown in html
    assert hidden not in html


def test_list_offers_the_filters(admin_client, governed, other):
    html = page(admin_client, LIST_URL)
    for parameter in ("applied=", "review=", "risk__exact", "phase__exact", "app_label="):
        assert parameter in html, parameter


# The detail page.


def test_detail_shows_what_a_reviewer_needs(admin_client, governed):
    html = page(admin_client, detail_url(governed))
    assert "shop.0003_remove_item_legacy" in html
    # Status, risk, phase and why, the version, the file, why it is blocked.
    assert "sm-state-needs_review" in html
    assert "sm-risk-destructive" in html
    assert "post_deploy" in html
    assert "inferred: SM201 drops a column the old code still uses (shop_item)" in html
    assert CHECKSUM in html
    assert "shop/migrations/0003_remove_item_legacy.py" in html
    assert "needs a review (destructive) and has none" in html
    assert "default (PostgreSQL 16)" in html
    # The operations.
    assert "Remove field legacy from item" in html
    # The findings, with their hints and details.
    assert "SM201" in html
    assert "SM401" in html
    assert HINT in html
    assert "ACCESS EXCLUSIVE" in html
    assert "checked: 40 rows, idempotent" in html
    assert "drop-column" in html
    # The SQL for this database, preformatted (escaped as HTML).
    operations = html.split('id="sm-operations"')[1]
    assert "1. RemoveField: Remove field legacy from item" in operations
    assert (
        '<pre class="sm-sql">ALTER TABLE &quot;shop_item&quot; DROP COLUMN &quot;legacy&quot; '
        "CASCADE;</pre>" in operations
    )
    # The steps with their locks and timeouts, the tables with their sizes.
    assert "lock ACCESS EXCLUSIVE, lock_timeout 5s" in html
    assert "~1,200 rows, 80 kB" in html
    assert "No decision yet." in html
    # Nothing to save: no edit form.
    assert 'name="_save"' not in html
    assert html.count('name="checksum"') == 1  # only the decision form's hidden field


def test_detail_shows_the_history_newest_first_and_marks_other_versions(admin_client, governed):
    now = timezone.now()
    Review.objects.create(
        migration=governed,
        checksum=OLD_CHECKSUM,
        decision="approve",
        reviewer_name="olga",
        note="Fine at the time (old version).",
        source="command",
        created_at=now - datetime.timedelta(days=2),
    )
    Review.objects.create(
        migration=governed,
        checksum=CHECKSUM,
        decision="reject",
        reviewer_name="rita",
        note="Not before the release that stops reading it.",
        source="admin",
        created_at=now - datetime.timedelta(hours=1),
    )
    html = page(admin_client, detail_url(governed))
    history = html.split('id="sm-history"')[1]
    newer = history.index("Not before the release that stops reading it.")
    older = history.index("Fine at the time (old version).")
    assert newer < older
    rows = history.split('class="sm-item sm-review"')[1:]
    assert "sm-decision-reject" in rows[0]
    assert "For another version" not in rows[0]
    assert "sm-decision-approve" in rows[1]
    assert "olga" in rows[1]
    assert "(command)" in rows[1]
    assert "For another version" in rows[1]
    assert "sha256:bbbbbbbbbbbb" in rows[1]


def test_unknown_migration_is_not_found(admin_client, db):
    response = admin_client.get("/admin/django_safemigrate/governedmigration/999999/change/")
    assert response.status_code in (302, 404)  # the admin redirects to the list with a message
    assert admin_client.post(decide_url(GovernedMigration(pk=999999))).status_code == 404


# Deciding.


def test_reviewer_approves_with_a_note(
    client, governed, reviewer, django_capture_on_commit_callbacks
):
    client.force_login(reviewer)
    html = page(client, detail_url(governed))
    assert 'id="decision_form"' in html
    assert f'action="{decide_url(governed)}"' in html
    assert f'<input type="hidden" name="checksum" value="{CHECKSUM}">' in html
    # Its own form, outside the (read-only) change form: forms do not nest.
    assert html.index('id="decision_form"') < html.index('id="governedmigration_form"')
    assert 'form="decision_form" name="decision" value="Approve"' in html
    assert 'form="decision_form" name="decision" value="Reject"' in html
    assert '<textarea name="note" id="id_note" form="decision_form"' in html
    assert "csrfmiddlewaretoken" in html

    received = []

    def receiver(sender, review, migration, **kwargs):
        received.append((review.decision, str(migration)))

    migration_reviewed.connect(receiver)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            response = post_decision(client, governed)
    finally:
        migration_reviewed.disconnect(receiver)

    assert response.redirect_chain == [(detail_url(governed), 302)]
    body = response.content.decode()
    assert "Approved shop.0003_remove_item_legacy" in body
    assert 'class="success"' in body
    review = Review.objects.get()
    assert (review.decision, review.checksum, review.source, review.note) == (
        "approve",
        CHECKSUM,
        "admin",
        "Column unused since 2.3.",
    )
    assert (review.reviewer_name, review.reviewer_pk) == ("rita", str(reviewer.pk))
    governed.refresh_from_db()
    assert governed.status == "approved"
    assert received == [("approve", "shop.0003_remove_item_legacy")]
    # The page now shows the decision.
    assert "Column unused since 2.3." in body.split('id="sm-history"')[1]


def test_reviewer_rejects(client, governed, reviewer):
    client.force_login(reviewer)
    response = post_decision(client, governed, decision="reject", note="Still read by cron.")
    assert "Rejected shop.0003_remove_item_legacy" in response.content.decode()
    review = Review.objects.get()
    assert review.decision == "reject"
    governed.refresh_from_db()
    assert governed.status == "rejected"


def test_a_later_approval_overrides_a_rejection(client, governed, reviewer):
    client.force_login(reviewer)
    post_decision(client, governed, decision="reject", note="Still read by cron.")
    post_decision(client, governed, decision="approve", note="Cron fixed in 2.4.")
    governed.refresh_from_db()
    assert governed.status == "approved"
    assert list(Review.objects.values_list("decision", flat=True)) == ["approve", "reject"]


@pytest.mark.parametrize("note", ["", "   \n "])
def test_an_empty_note_is_refused(client, governed, reviewer, note):
    client.force_login(reviewer)
    response = post_decision(client, governed, note=note)
    assert response.redirect_chain == [(detail_url(governed), 302)]
    assert "A decision needs a note saying why; nothing was recorded." in (
        response.content.decode()
    )
    assert 'class="error"' in response.content.decode()
    assert not Review.objects.exists()
    governed.refresh_from_db()
    assert governed.status == "pending_review"


@pytest.mark.parametrize("posted", [OLD_CHECKSUM, ""])
def test_a_decision_for_another_version_is_refused(client, governed, reviewer, posted):
    """The file changed (and safemigrate re-judged it) while the reviewer was reading."""
    client.force_login(reviewer)
    response = post_decision(client, governed, checksum=posted)
    body = response.content.decode()
    assert "changed while you were reading it" in body
    assert "nothing was recorded" in body
    assert not Review.objects.exists()
    governed.refresh_from_db()
    assert governed.status == "pending_review"


def test_an_unknown_decision_is_refused(client, governed, reviewer):
    client.force_login(reviewer)
    response = post_decision(client, governed, decision="maybe")
    assert "Choose Approve or Reject." in response.content.decode()
    assert not Review.objects.exists()


def test_decide_url_takes_only_post(client, governed, reviewer):
    client.force_login(reviewer)
    assert client.get(decide_url(governed)).status_code == 405
    assert not Review.objects.exists()


def test_a_post_without_csrf_token_is_refused(governed, reviewer):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(reviewer)
    response = client.post(
        decide_url(governed), {"decision": "approve", "note": "x", "checksum": CHECKSUM}
    )
    assert response.status_code == 403
    assert not Review.objects.exists()


# Who may decide.


def test_viewer_without_decide_permission_sees_no_form_and_cannot_forge_one(
    client, governed, viewer
):
    client.force_login(viewer)
    html = page(client, detail_url(governed))
    assert "SM201" in html  # may read everything
    assert 'id="decision_form"' not in html
    assert "Approve" not in html
    assert decide_url(governed) not in html

    response = client.post(
        decide_url(governed),
        {"decision": "approve", "note": "Forged.", "checksum": CHECKSUM},
    )
    assert response.status_code == 403
    assert not Review.objects.exists()
    governed.refresh_from_db()
    assert governed.status == "pending_review"


def test_superuser_may_decide(admin_client, admin_user, governed):
    assert 'id="decision_form"' in page(admin_client, detail_url(governed))
    response = post_decision(admin_client, governed)
    assert "Approved shop.0003_remove_item_legacy" in response.content.decode()
    assert Review.objects.get().reviewer_name == admin_user.get_username()


def test_staff_without_view_permission_sees_nothing(client, governed, db):
    client.force_login(staff("sam"))
    assert client.get(LIST_URL).status_code == 403
    assert client.get(detail_url(governed)).status_code == 403
    assert client.get(REVIEWS_URL).status_code == 403
    assert (
        client.post(
            decide_url(governed), {"decision": "approve", "note": "x", "checksum": CHECKSUM}
        ).status_code
        == 403
    )
    assert not Review.objects.exists()


def test_decide_permission_alone_lets_a_staff_user_decide(client, governed, db):
    """The permission is what counts on the server, not the page the form is on."""
    client.force_login(staff("dora", "decide_migration"))
    response = post_decision(client, governed)
    assert response.status_code == 403  # the redirect back lands on a page dora may not view
    assert Review.objects.get().reviewer_name == "dora"


def test_inactive_reviewer_cannot_decide(client, governed, reviewer):
    client.force_login(reviewer)
    User.objects.filter(pk=reviewer.pk).update(is_active=False)
    response = client.post(
        decide_url(governed), {"decision": "approve", "note": "x", "checksum": CHECKSUM}
    )
    assert response.status_code in (302, 403)  # logged out: to the login page
    assert not Review.objects.exists()


def test_anonymous_user_is_sent_to_the_login_page(client, governed):
    response = client.post(
        decide_url(governed), {"decision": "approve", "note": "x", "checksum": CHECKSUM}
    )
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]
    assert not Review.objects.exists()


def test_governed_migrations_cannot_be_added_changed_or_deleted(admin_client, governed):
    assert admin_client.get(f"{LIST_URL}add/").status_code == 403
    response = admin_client.post(detail_url(governed), {"status": "approved", "risk": "safe"})
    assert response.status_code == 403
    assert admin_client.post(f"{LIST_URL}{governed.pk}/delete/").status_code == 403
    governed.refresh_from_db()
    assert (governed.status, governed.risk) == ("pending_review", "destructive")


# Reviews: a read-only, append-only record.


@pytest.fixture
def review(governed) -> Review:
    return Review.objects.create(
        migration=governed,
        checksum=CHECKSUM,
        decision="approve",
        reviewer_name="rita",
        note="Column unused since 2.3.",
        source="admin",
        created_at=timezone.now(),
    )


def test_reviews_are_listed_with_filters(admin_client, review):
    Review.objects.create(
        migration=review.migration,
        checksum=OLD_CHECKSUM,
        decision="reject",
        reviewer_name="olga",
        note="Not yet.",
        source="command",
        created_at=timezone.now() - datetime.timedelta(days=1),
    )
    html = page(admin_client, REVIEWS_URL)
    assert "rita" in html
    assert "olga" in html
    assert "shop.0003_remove_item_legacy" in html
    assert "decision__exact=reject" in html
    assert "source=command" in html
    filtered = page(admin_client, f"{REVIEWS_URL}?decision__exact=reject")
    assert ("olga" in filtered, "rita" in filtered) == (True, False)
    filtered = page(admin_client, f"{REVIEWS_URL}?source=admin")
    assert ("olga" in filtered, "rita" in filtered) == (False, True)
    detail = page(admin_client, f"{REVIEWS_URL}{review.pk}/change/")
    assert "Column unused since 2.3." in detail
    assert 'name="_save"' not in detail


def test_reviews_cannot_be_added_changed_or_deleted_through_the_admin(admin_client, review):
    assert admin_client.get(f"{REVIEWS_URL}add/").status_code == 403
    assert admin_client.post(f"{REVIEWS_URL}add/", {"note": "forged"}).status_code == 403
    response = admin_client.post(f"{REVIEWS_URL}{review.pk}/change/", {"note": "rewritten"})
    assert response.status_code == 403
    assert admin_client.post(f"{REVIEWS_URL}{review.pk}/delete/").status_code == 403
    response = admin_client.post(
        REVIEWS_URL, {"action": "delete_selected", "_selected_action": [review.pk], "post": "yes"}
    )
    assert Review.objects.count() == 1
    review.refresh_from_db()
    assert review.note == "Column unused since 2.3."


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE django_safemigrate_review SET note = 'rewritten' WHERE id = %s",
        "UPDATE django_safemigrate_review SET decision = 'reject' WHERE id = %s",
        "DELETE FROM django_safemigrate_review WHERE id = %s",
    ],
)
def test_the_database_refuses_to_rewrite_a_review(review, sql):
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(sql, [review.pk])
    row = Review.objects.values_list("note", "decision").get(pk=review.pk)
    assert row == ("Column unused since 2.3.", "approve")
