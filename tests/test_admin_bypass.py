"""What the admin shows of bypasses: runs without governance, and where decisions came from."""

from __future__ import annotations

import datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from django_safemigrate.models import GovernedMigration, MigrationRecord, Review, Run

PLAIN = "plain migrate: no review or phase gate (safemigrate has them)"
CHECKSUM = "sha256:" + "c" * 64


def make_run(argv: str, user: str, host: str, ungoverned: str | None) -> Run:
    now = timezone.now()
    return Run.objects.create(
        command=argv.split()[1],
        argv=argv,
        database="default",
        host=host,
        pid=7,
        user=user,
        started_at=now,
        finished_at=now,
        outcome="applied",
        exit_code=0,
        ungoverned=ungoverned,
    )


def record(run: Run, name: str) -> MigrationRecord:
    now = timezone.now()
    return MigrationRecord.objects.create(
        run=run,
        app_label="shop",
        name=name,
        checksum=CHECKSUM,
        started_at=now,
        finished_at=now,
        duration=datetime.timedelta(seconds=1),
        outcome="applied",
    )


@pytest.fixture
def ledger(db) -> dict[str, object]:
    gated = make_run("manage.py safemigrate", "deploy", "ci-runner-3", "")
    bypass = make_run("manage.py migrate shop", "alice", "web-7", PLAIN)
    record(gated, "0002_add_sku")
    dropped = record(bypass, "0003_remove_legacy")
    now = timezone.now()
    governed = GovernedMigration.objects.create(
        app_label="shop",
        name="0003_remove_legacy",
        checksum=CHECKSUM,
        risk="destructive",
        phase="post_deploy",
        status="applied",
        review_required=True,
        first_seen=now,
        last_seen=now,
        applied_at=now,
    )
    Review.objects.create(
        migration=governed,
        checksum=CHECKSUM,
        decision="reject",
        reviewer_name="rita",
        reviewer_pk="3",
        note="not before the export job is gone",
        source="command",
        os_user="root",
        host="web-7-shell",
        created_at=now,
    )
    return {"gated": gated, "bypass": bypass, "governed": governed, "dropped": dropped}


def test_the_run_list_shows_who_ran_what_without_governance(admin_client, ledger):
    page = admin_client.get("/admin/django_safemigrate/run/").content.decode()
    assert "ungoverned:</strong> " + PLAIN in page
    assert "alice" in page
    assert "web-7" in page

    only = admin_client.get("/admin/django_safemigrate/run/?governance=ungoverned")
    assert "web-7" in only.content.decode()
    assert "ci-runner-3" not in only.content.decode()
    gated = admin_client.get("/admin/django_safemigrate/run/?governance=gated")
    assert "ci-runner-3" in gated.content.decode()
    assert "web-7" not in gated.content.decode()

    detail = admin_client.get(f"/admin/django_safemigrate/run/{ledger['bypass'].pk}/change/")
    assert PLAIN in detail.content.decode()


def test_a_migration_record_names_its_run_and_its_governance(admin_client, ledger):
    records = admin_client.get("/admin/django_safemigrate/migrationrecord/?governance=ungoverned")
    assert "0003_remove_legacy" in records.content.decode()
    assert "0002_add_sku" not in records.content.decode()
    page = admin_client.get(
        f"/admin/django_safemigrate/migrationrecord/{ledger['dropped'].pk}/change/"
    ).content.decode()
    assert "alice@web-7 (pid 7): manage.py migrate shop" in page
    assert PLAIN in page


def test_the_migration_page_shows_it_was_applied_without_governance(admin_client, ledger):
    governed = ledger["governed"]
    page = admin_client.get(
        reverse("admin:django_safemigrate_governedmigration_change", args=[governed.pk])
    ).content.decode()
    assert 'id="sm-bypasses"' in page
    assert "Applied without governance" in page
    section = page[page.index('id="sm-bypasses"') :]
    assert "alice@web-7" in section
    assert "manage.py migrate shop" in section
    assert PLAIN in section
    # The decision typed on a shell names where it was typed.
    assert "(command, typed by root@web-7-shell)" in page


def test_a_migration_applied_only_under_governance_has_no_bypass_section(admin_client, ledger):
    now = timezone.now()
    governed = GovernedMigration.objects.create(
        app_label="shop",
        name="0002_add_sku",
        checksum=CHECKSUM,
        risk="risky",
        phase="pre_deploy",
        status="applied",
        review_required=False,
        first_seen=now,
        last_seen=now,
    )
    page = admin_client.get(
        reverse("admin:django_safemigrate_governedmigration_change", args=[governed.pk])
    ).content.decode()
    assert "sm-bypasses" not in page


def test_the_review_list_says_where_each_decision_came_from(admin_client, ledger):
    page = admin_client.get("/admin/django_safemigrate/review/").content.decode()
    assert "root@web-7-shell" in page
