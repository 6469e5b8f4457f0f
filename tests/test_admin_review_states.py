"""The review screen for every state a migration can be in, from real gate records.

The records are what ``safemigrate`` keeps: the example site's own migrations are
judged by the gate on the test database (``judge`` then ``record``, as a deploy
does) and the admin pages are read with Django's test client. Eight migrations of
``example_site.shop`` make the plan: a safe one, a data migration (``RunPython``),
a NOT NULL change, an index built online, a destructive column removal that needs
a review, and the two migrations after it, which wait for it.
"""

from __future__ import annotations

import datetime
import html as entities
import re
import sys
from pathlib import Path

import pytest
from django.contrib.auth.models import Permission, User
from django.db import connection, migrations
from django.db.migrations.loader import MigrationLoader
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone

import django_safemigrate
from django_safemigrate.conf import get_settings
from django_safemigrate.governance.judge import judge, record
from django_safemigrate.models import GovernedMigration, Review, Run

PLAN = [
    ("shop", "0010_customer_email_normalized"),
    ("shop", "0011_backfill_customer_email_normalized"),
    ("shop", "0012_customer_email_normalized_not_null"),
    ("shop", "0016_order_status_created_index"),
    ("shop", "0031_review_is_published"),
    ("shop", "0032_remove_product_legacy_code"),
    ("shop", "0033_customer_marketing_opt_in"),
    ("shop", "0034_category_position"),
]
DROP = ("shop", "0032_remove_product_legacy_code")
AFTER_DROP = ("shop", "0033_customer_marketing_opt_in")
LAST = ("shop", "0034_category_position")
BACKFILL = ("shop", "0011_backfill_customer_email_normalized")
INDEX = ("shop", "0016_order_status_created_index")
LIST_URL = "/admin/django_safemigrate/governedmigration/"
PERMISSION_TEXT = (
    "needs the permission “Can approve or reject migrations” "
    "(<code>django_safemigrate.decide_migration</code>)"
)


def blocked_run() -> Run:
    now = timezone.now()
    return Run.objects.create(
        command="safemigrate",
        argv="manage.py safemigrate --phase post",
        database="default",
        host="deploy-7",
        pid=4242,
        user="deploy",
        started_at=now,
        finished_at=now,
        outcome="blocked",
        exit_code=3,
    )


def judge_plan(run: Run) -> None:
    """What a ``safemigrate`` run does before it applies anything: judge the plan and
    keep what the gate decided."""
    loader = MigrationLoader(connection)
    plan = [(loader.graph.nodes[key], False) for key in PLAN]
    judged = judge(
        connection,
        loader,
        plan,
        get_settings(),
        phase=None,
        apply_unblocked=False,
        history_readable=True,
    )
    assert judged is not None
    record(connection, judged, fake=False, run=run.pk)


@pytest.fixture
def run(db) -> Run:
    run = blocked_run()
    judge_plan(run)
    return run


def governed(key: tuple[str, str]) -> GovernedMigration:
    return GovernedMigration.objects.get(app_label=key[0], name=key[1])


def detail_url(key: tuple[str, str]) -> str:
    return reverse("admin:django_safemigrate_governedmigration_change", args=[governed(key).pk])


def decide_url(key: tuple[str, str]) -> str:
    return reverse("admin:django_safemigrate_governedmigration_decide", args=[governed(key).pk])


def page(client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, response.status_code
    return response.content.decode()


def row(html: str, key: tuple[str, str]) -> str:
    """The list's row of ``key``."""
    rows = [r for r in html.split("<tr")[1:] if f'<span class="sm-name">{key[1]}</span>' in r]
    assert len(rows) == 1, key
    return rows[0].split("</tr>")[0]


def section(html: str, name: str) -> str:
    """From the element ``id=name`` to the next section of the page."""
    rest = html.split(f'id="{name}"')[1]
    return re.split(r'<div class="module"|<div class="changelist-form-container"', rest)[0]


def text(html: str) -> str:
    """The words of ``html`` as a reader sees them: tags, entities and runs of blanks gone."""
    words = " ".join(entities.unescape(re.sub(r"<[^>]+>", " ", html)).split())
    return re.sub(r" ([:;,.)])", r"\1", words)


def crumbs(html: str) -> str:
    """The breadcrumbs, separated by " > " (the admin draws a right angle quote)."""
    # Django 5 draws <div class="breadcrumbs">, Django 6 an <ol class="breadcrumbs"> list.
    found = re.search(r'<(div|ol)[^>]*class="breadcrumbs"[^>]*>(.*?)</\1>', html, re.S)
    assert found, "no breadcrumbs"
    if found.group(1) == "ol":  # the separators are drawn by CSS between the items
        items = re.findall(r"<li[^>]*>(.*?)</li>", found.group(2), re.S)
        return " > ".join(text(item) for item in items)
    trail = text(found.group(2))
    return trail.replace("\N{SINGLE RIGHT-POINTING ANGLE QUOTATION MARK}", ">")


def staff(username: str, *codenames: str) -> User:
    user = User.objects.create_user(username, password="pw", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(
            content_type__app_label="django_safemigrate", codename__in=codenames
        )
    )
    return User.objects.get(pk=user.pk)


@pytest.fixture
def reviewer(db) -> User:
    return staff("rita", "view_governedmigration", "view_review", "decide_migration")


@pytest.fixture
def viewer(db) -> User:
    return staff("victor", "view_governedmigration", "view_review")


def decide(client, key: tuple[str, str], decision: str, note: str):
    response = client.post(
        decide_url(key),
        {"decision": decision, "note": note, "checksum": governed(key).checksum},
        follow=True,
    )
    assert response.status_code == 200
    return response.content.decode()


# The list.


def test_every_migration_of_the_plan_is_listed_in_plan_order_with_its_risk(admin_client, run):
    html = page(admin_client, LIST_URL)
    positions = [html.index(f'<span class="sm-name">{name}</span>') for _, name in PLAN]
    assert positions == sorted(positions)
    assert len(positions) == len(PLAN)
    # The risky data migration no review is asked for is listed too, with its risk.
    backfill = row(html, BACKFILL)
    assert '<span class="sm-badge sm-risk-risky">risky</span>' in backfill
    assert "not required" in backfill
    assert "Ready" in backfill
    assert '<span class="sm-badge sm-risk-destructive">destructive</span>' in row(html, DROP)
    # The plan's place of each, from the migration files: 0010 comes before 0011.
    numbers = [int(re.search(r'field-position">(\d+)<', row(html, k)).group(1)) for k in PLAN]
    assert numbers == sorted(numbers)


def test_which_migrations_need_a_review_follows_the_current_setting(admin_client, run):
    html = page(admin_client, LIST_URL)
    summary = text(section(html, "sm-summary"))
    assert (
        "REVIEW = 'destructive': destructive migrations need an approval before "
        "safemigrate applies them." in summary
    )
    assert "8 migrations not applied yet, 1 of them waiting for a review" in summary
    assert '<strong class="sm-review-word">required</strong>' in row(html, DROP)
    assert "not required" in row(html, BACKFILL)
    assert set(re.findall(r'sm-name">([^<]+)<', page(admin_client, f"{LIST_URL}?review=needed")))
    assert re.findall(r'sm-name">([^<]+)<', page(admin_client, f"{LIST_URL}?review=needed")) == [
        DROP[1]
    ]

    with override_settings(SAFEMIGRATE={"REVIEW": "risky"}):
        html = page(admin_client, LIST_URL)
        assert "REVIEW = 'risky': risky and destructive migrations need an approval" in text(html)
        assert '<strong class="sm-review-word">required</strong>' in row(html, BACKFILL)
        needed = re.findall(r'sm-name">([^<]+)<', page(admin_client, f"{LIST_URL}?review=needed"))
        assert BACKFILL[1] in needed
        assert DROP[1] in needed
        # The backfill now needs a review it does not have.
        assert "Needs a review" in row(html, BACKFILL)


def test_a_migration_held_back_by_a_dependency_says_which_one(admin_client, run):
    html = page(admin_client, LIST_URL)
    after = row(html, AFTER_DROP)
    assert "sm-state-waiting" in after
    assert f"Waits for shop.{DROP[1]}" in after
    assert f"It depends on shop.{DROP[1]}, which needs a review; it runs only after it." in after
    assert "sm-state-ready" not in after
    last = row(html, LAST)
    assert f"Waits for shop.{AFTER_DROP[1]}" in last
    assert f"which waits for shop.{DROP[1]}" in last

    detail = page(admin_client, detail_url(AFTER_DROP))
    dependencies = section(detail, "sm-dependencies")
    assert "It waits for:" in dependencies
    assert f'<a href="{detail_url(DROP)}">shop.{DROP[1]}</a>' in dependencies


def test_the_list_fits_the_admin_and_has_no_add_or_delete(admin_client, run):
    html = page(admin_client, LIST_URL)
    assert "/governedmigration/add/" not in html
    assert "delete_selected" not in html
    assert "django_safemigrate/review.css" in html


# A migration's page.


def test_the_page_shows_findings_hints_tables_phase_run_and_dependents(admin_client, run):
    html = page(admin_client, detail_url(DROP))
    findings = text(section(html, "sm-findings"))
    assert "SM201 drop-column destructive" in findings
    assert "Hint: Stop using the field in one release" in findings
    assert "Table shop_product: ~0 rows, " in findings
    assert "Lock ACCESS EXCLUSIVE" in findings
    # Django 6 leaves CASCADE out of DROP COLUMN.
    assert 'ALTER TABLE "shop_product" DROP COLUMN "legacy_code"' in findings
    fields = text(html.split('id="governedmigration_form"')[1].split('class="sm-sections"')[0])
    assert "Phase: post_deploy" in fields
    assert "Phase reason: inferred: SM201 drops a column" in fields
    assert "State: Needs a review It is destructive" in fields
    run_url = reverse("admin:django_safemigrate_run_change", args=[run.pk])
    assert f'<a href="{run_url}">run {run.pk}</a>' in html
    assert "by deploy@deploy-7 (pid 4242)" in fields
    assert "outcome blocked (exit 3)" in fields
    assert "Its verdict (blocked): needs a review (destructive) and has none." in fields
    dependents = text(section(html, "sm-dependencies"))
    assert "Not applied yet and waiting for it:" in dependents
    assert f"shop.{AFTER_DROP[1]}" in dependents
    assert f"shop.{LAST[1]} (through another migration)" in dependents
    assert "shop_product: ~0 rows, " in text(section(html, "sm-tables"))


def test_the_page_shows_the_python_a_data_migration_runs(admin_client, run):
    html = page(admin_client, detail_url(BACKFILL))
    operations = section(html, "sm-operations")
    assert "Python it runs forwards:" in operations
    assert "shop.migrations.0011_backfill_customer_email_normalized.backfill_email_normalized" in (
        operations
    )
    assert "example_site/shop/migrations/0011_backfill_customer_email_normalized.py" in operations
    assert "def backfill_email_normalized(apps, schema_editor):" in operations
    assert (
        "Customer.objects.using(db_alias).bulk_update(batch, [&quot;email_normalized&quot;])"
        in (operations)
    )
    assert "Python it runs backwards:" in operations
    assert "def clear_email_normalized(apps, schema_editor):" in operations
    assert "SM401 data-migration" in text(section(html, "sm-findings"))


def test_the_page_shows_the_exact_sql_of_each_online_step(admin_client, run):
    html = page(admin_client, detail_url(INDEX))
    operations = text(section(html, "sm-operations"))
    assert "SQL the backend emits; safemigrate runs it online" in operations
    assert 'CREATE INDEX "shop_order_status_created_idx"' in operations
    steps = section(html, "sm-steps")
    concurrent = [s for s in steps.split('class="sm-item sm-step"') if "CONCURRENTLY" in s]
    assert concurrent, steps
    assert "CREATE INDEX CONCURRENTLY" in concurrent[0]
    assert "non_transactional" in concurrent[0]
    assert "SHARE UPDATE EXCLUSIVE" in concurrent[0]


# Deciding, and the history.


def test_decide_again_only_after_a_decision(client, run, reviewer):
    client.force_login(reviewer)
    # Neither a migration that needs a review nor one that does not (and waits for
    # another) has been decided on yet.
    for key in (DROP, AFTER_DROP):
        html = page(client, detail_url(key))
        assert "<h2>Decide</h2>" in html
        assert "Decide again" not in html
    decide(client, DROP, "Approve", "Column unused since 2.3.")
    html = page(client, detail_url(DROP))
    assert "<h2>Decide again</h2>" in html


def test_buttons_and_breadcrumb_follow_the_admin(client, run, reviewer):
    client.force_login(reviewer)
    html = page(client, detail_url(DROP))
    buttons = re.findall(r'<input type="submit" form="decision_form"[^>]*>', html)
    assert buttons == [
        '<input type="submit" form="decision_form" name="decision" value="Approve">',
        '<input type="submit" form="decision_form" name="decision" value="Reject" '
        'class="sm-reject">',
    ]
    # No "default" class: the admin upper-cases that one; both read as written.
    assert "default" not in " ".join(buttons)
    breadcrumbs = crumbs(html)
    assert breadcrumbs == " > ".join(
        ["Home", "Migration governance", "Migrations", f"shop.{DROP[1]}"]
    )
    listing = page(client, LIST_URL)
    assert crumbs(listing) == (" > ".join(["Home", "Migration governance", "Migrations"]))


def test_a_user_without_the_permission_is_told_which_one(client, run, viewer):
    client.force_login(viewer)
    html = page(client, detail_url(DROP))
    assert 'id="decision_form"' not in html
    assert "You can read this migration but not approve or reject it: that " in html
    assert PERMISSION_TEXT in html
    response = client.post(
        decide_url(DROP),
        {"decision": "approve", "note": "Forged.", "checksum": governed(DROP).checksum},
    )
    assert response.status_code == 403
    assert PERMISSION_TEXT in response.content.decode()
    assert "Nothing was recorded: victor may not approve or reject migrations." in (
        response.content.decode()
    )
    assert not Review.objects.exists()


def test_a_rejection_says_who_and_why(client, run, reviewer):
    client.force_login(reviewer)
    decide(client, DROP, "Reject", "The nightly export still reads legacy_code.")
    listing = page(client, LIST_URL)
    drop = row(listing, DROP)
    assert "sm-state-rejected" in drop
    assert re.search(
        r"Rejected by rita on \d{4}-\d\d-\d\d \d\d:\d\d: The nightly export still reads "
        r"legacy_code\. It does not run until someone approves it\.",
        drop,
    )
    assert "which was rejected" in row(listing, AFTER_DROP)
    html = page(client, detail_url(DROP))
    history = text(section(html, "sm-history"))
    assert "Rejected by rita" in history
    assert "The nightly export still reads legacy_code." in history
    assert "In force: the current state comes from this decision." in history


def test_reject_approve_then_edit_shows_a_stale_approval_not_a_rejection(
    client, run, reviewer, monkeypatch
):
    client.force_login(reviewer)
    decide(client, DROP, "Reject", "The nightly export still reads legacy_code.")
    decide(client, DROP, "Approve", "The export stopped reading it in 2.4.")
    assert "sm-state-approved" in row(page(client, LIST_URL), DROP)
    approved_version = governed(DROP).checksum

    # The file changes (one more operation); the next deploy judges the new version.
    module = sys.modules[f"example_site.shop.migrations.{DROP[1]}"]
    edited = type(
        "Migration",
        (module.Migration,),
        {
            "__module__": module.__name__,
            "operations": [
                *module.Migration.operations,
                migrations.RunSQL("SELECT 1", migrations.RunSQL.noop),
            ],
        },
    )
    monkeypatch.setattr(module, "Migration", edited)
    judge_plan(blocked_run())
    assert governed(DROP).checksum != approved_version
    assert governed(DROP).status == "pending_review"

    drop = row(page(client, LIST_URL), DROP)
    assert "sm-state-stale" in drop
    assert "Needs a new review" in drop
    assert "Rejected" not in drop
    history = section(page(client, detail_url(DROP)), "sm-history")
    entries = [text(e).lstrip("> ") for e in history.split('class="sm-item sm-review"')[1:]]
    assert entries[0].startswith("Approved by rita")
    assert "For another version of the file: it no longer counts." in entries[0]
    assert entries[1].startswith("Rejected by rita")
    assert "Answered by the approval of rita" in entries[1]
    assert "In force" not in history


def test_decisions_show_who_when_and_why(client, run, reviewer):
    client.force_login(reviewer)
    before = timezone.localtime()
    body = decide(client, DROP, "Approve", "Column unused since 2.3.")
    assert f"Approved shop.{DROP[1]}" in body
    review = Review.objects.get()
    assert review.created_at >= before - datetime.timedelta(seconds=1)
    history = text(section(body, "sm-history"))
    assert "Approved by rita" in history
    assert "Column unused since 2.3." in history
    assert "In force: the current state comes from this decision." in history
    when = timezone.localtime(review.created_at)
    assert f"{when:%Y}" in history
    assert "sm-state-approved" in body
    assert "Approved by rita on" in text(body.split('class="sm-state"')[1].split("</div>")[0])


def test_an_applied_migration_offers_no_decision(client, run, reviewer):
    client.force_login(reviewer)
    GovernedMigration.objects.filter(pk=governed(BACKFILL).pk).update(
        applied_at=timezone.now(), status="applied"
    )
    html = page(client, detail_url(BACKFILL))
    assert 'id="decision_form"' not in html
    assert "It is applied: there is nothing left to approve or reject." in html
    listing = page(client, LIST_URL)
    assert "sm-state-applied" in row(listing, BACKFILL)
    # Applied ones come after the waiting ones.
    assert listing.index(BACKFILL[1]) > listing.index(LAST[1])


def test_the_screen_uses_only_the_admins_colour_variables():
    """Light, dark or a site's own theme: the screen's colours are the admin's."""
    package = Path(django_safemigrate.__file__).parent
    css = (package / "static" / "django_safemigrate" / "review.css").read_text()
    css = re.sub(r"/\*.*?\*/", "", css, flags=re.DOTALL)
    assert not re.search(r"#[0-9a-fA-F]{3,8}\b|\b(?:rgba?|hsla?|hwb|lab|lch|oklab|oklch)\(", css)
    declarations = re.findall(r"\b((?:background|color|border|outline)[a-z-]*)\s*:\s*([^;}]+)", css)
    assert declarations
    for prop, value in declarations:
        colours = re.sub(r"var\(--[a-z-]+\)|\b\d+(?:\.\d+)?px\b|\bsolid\b|\bnone\b", "", value)
        assert not colours.strip(), (prop, value)
    templates = package / "templates" / "admin" / "django_safemigrate" / "governedmigration"
    for template in templates.glob("*.html"):
        assert "style=" not in template.read_text(), template
        assert "<style" not in template.read_text(), template


def test_a_review_can_be_asked_by_kind(admin_client, run):
    """``REVIEW`` as a list: the data migration (SM401, opaque) needs a review too."""
    with override_settings(SAFEMIGRATE={"REVIEW": ["destructive", "opaque"]}):
        html = page(admin_client, LIST_URL)
        assert (
            "REVIEW = ['destructive', 'opaque']: destructive migrations; migrations that run "
            "code the analysis cannot see into need an approval" in text(html)
        )
        assert '<strong class="sm-review-word">required</strong>' in row(html, BACKFILL)
        needed = re.findall(r'sm-name">([^<]+)<', page(admin_client, f"{LIST_URL}?review=needed"))
        assert needed == [BACKFILL[1], DROP[1]]
    findings = text(section(page(admin_client, detail_url(DROP)), "sm-findings"))
    assert "Puts at risk loses-data, breaks-old-code" in findings


def test_an_installed_packages_migration_needs_no_review(admin_client, run):
    kept = governed(DROP)
    GovernedMigration.objects.filter(pk=kept.pk).update(
        analysis={**kept.analysis, "package": "shop-extras 2.1"}
    )
    html = page(admin_client, LIST_URL)
    assert "not required" in row(html, DROP)
    assert re.findall(r'sm-name">([^<]+)<', page(admin_client, f"{LIST_URL}?review=needed")) == []
    findings = text(section(page(admin_client, detail_url(DROP)), "sm-findings"))
    assert "From the installed package shop-extras 2.1: shown, but it needs no review" in findings

    with override_settings(SAFEMIGRATE={"GOVERN_PACKAGES": ["shop"]}):
        html = page(admin_client, LIST_URL)
        assert '<strong class="sm-review-word">required</strong>' in row(html, DROP)
        needed = re.findall(r'sm-name">([^<]+)<', page(admin_client, f"{LIST_URL}?review=needed"))
        assert needed == [DROP[1]]


def test_a_rollback_is_listed_and_reviewed_apart(admin_client, run):
    """Unapplying 0033 drops the column it added: its rollback has a record of its own."""
    loader = MigrationLoader(connection)
    judged = judge(
        connection,
        loader,
        [(loader.graph.nodes[AFTER_DROP], True)],
        get_settings(),
        phase=None,
        apply_unblocked=False,
        history_readable=True,
    )
    assert judged is not None
    record(connection, judged, fake=False, run=run.pk)
    rows = GovernedMigration.objects.filter(app_label="shop", name=AFTER_DROP[1])
    assert sorted(rows.values_list("direction", "risk")) == [
        ("backward", "destructive"),
        ("forward", "safe"),
    ]
    rollback = rows.get(direction="backward")

    html = page(admin_client, LIST_URL)
    assert '<span class="sm-badge sm-direction-backward">rollback</span>' in html
    detail = page(
        admin_client,
        reverse("admin:django_safemigrate_governedmigration_change", args=[rollback.pk]),
    )
    assert "Unapplying it is destructive: a reviewer must approve the rollback" in text(detail)
    findings = text(section(detail, "sm-findings"))
    assert "SM201 drop-column destructive" in findings
    assert 'DROP COLUMN "marketing_opt_in"' in findings
    assert "Unapply: Add field marketing_opt_in to customer" in text(
        section(detail, "sm-operations")
    )
