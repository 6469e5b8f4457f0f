"""The ledger in the admin is a record: readable, never editable."""

from __future__ import annotations

import datetime

import pytest
from django.utils import timezone

from django_safemigrate.models import MigrationRecord, Run


@pytest.fixture
def run(db):
    now = timezone.now()
    run = Run.objects.create(
        command="safemigrate",
        argv="manage.py safemigrate",
        database="default",
        host="web-1",
        pid=42,
        user="deploy",
        started_at=now,
        finished_at=now,
        outcome="applied",
        exit_code=0,
    )
    MigrationRecord.objects.create(
        run=run,
        app_label="shop",
        name="0002_x",
        checksum="sha256:" + "0" * 64,
        started_at=now,
        finished_at=now,
        duration=datetime.timedelta(seconds=1),
        outcome="applied",
    )
    return run


def test_runs_and_records_are_listed_and_shown(admin_client, run):
    listing = admin_client.get("/admin/django_safemigrate/run/")
    assert listing.status_code == 200
    assert "web-1" in listing.content.decode()
    detail = admin_client.get(f"/admin/django_safemigrate/run/{run.pk}/change/")
    assert detail.status_code == 200
    assert "0002_x" in detail.content.decode()
    assert "Save" not in detail.content.decode()
    records = admin_client.get("/admin/django_safemigrate/migrationrecord/")
    assert records.status_code == 200


def test_the_ledger_cannot_be_added_changed_or_deleted(admin_client, run):
    before = Run.objects.count()
    assert admin_client.get("/admin/django_safemigrate/run/add/").status_code == 403
    response = admin_client.post(
        f"/admin/django_safemigrate/run/{run.pk}/change/", {"host": "forged"}
    )
    assert response.status_code == 403
    assert admin_client.post(f"/admin/django_safemigrate/run/{run.pk}/delete/").status_code == 403
    run.refresh_from_db()
    assert run.host == "web-1"
    assert Run.objects.count() == before


def test_the_run_page_shows_its_archives_and_recovery_check(admin_client, run):
    from django_safemigrate.models import Archive

    Run.objects.filter(pk=run.pk).update(
        recovery_check="warned (pg_stat_archiver): WAL archiving is off (archive_mode = off)"
    )
    archive = Archive.objects.create(
        run=run,
        app_label="shop",
        name="0003_remove_item_legacy",
        operation_index=0,
        operation="RemoveField",
        source_table="shop_item",
        source_column="legacy",
        primary_key="id",
        archive_schema="safemigrate_archive",
        archive_table=f"shop_item__legacy__{run.pk}",
        row_count=3,
        created_at=timezone.now(),
    )
    page = admin_client.get(f"/admin/django_safemigrate/run/{run.pk}/change/").content.decode()
    assert "shop_item.legacy" in page
    assert f"safemigrate_archive.shop_item__legacy__{run.pk}" in page
    assert f"manage.py restorearchive {archive.pk}" in page
    assert "WAL archiving is off (archive_mode = off)" in page
    listing = admin_client.get("/admin/django_safemigrate/archive/")
    assert listing.status_code == 200
    assert f"shop_item__legacy__{run.pk}" in listing.content.decode()
    assert admin_client.get("/admin/django_safemigrate/archive/add/").status_code == 403
