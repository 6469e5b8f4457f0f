"""The reverse of a migration, judged by the same rules as forward SQL.

The example site's migrations, unapplied one at a time in the analysis (collect-only,
inside its guards): a created table is dropped, an added index is dropped, a renamed
column is renamed back, a data migration's ``reverse_code`` is a data migration.
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.loader import MigrationLoader

from django_safemigrate.analysis.analyzer import AnalysisOptions
from django_safemigrate.analysis.backwards import analyse_backwards, irreversible
from django_safemigrate.analysis.database import server_major
from django_safemigrate.enums import Risk

pytestmark = pytest.mark.django_db


def reverse_of(name: str):
    loader = MigrationLoader(connection)
    options = AnalysisOptions(pg_version=server_major(connection), small_table_rows=0)
    (report,) = analyse_backwards(loader, [("shop", name)], connection, options)
    return report


def codes(report) -> dict[str, tuple[str | None, int | None]]:
    return {f.code: (f.operation, f.operation_index) for f in report.findings}


def test_unapplying_a_create_model_drops_the_table() -> None:
    report = reverse_of("0006_coupon")
    assert report.risk is Risk.DESTRUCTIVE
    assert codes(report)["SM202"] == ("CreateModel (unapplied)", 0)
    drop = next(f for f in report.findings if f.code == "SM202")
    assert drop.table == "shop_coupon"
    assert drop.line == 13


def test_unapplying_an_index_drops_it_without_concurrently() -> None:
    report = reverse_of("0016_order_status_created_index")
    assert codes(report)["SM102"] == ("AddIndex (unapplied)", 0)
    assert report.risk is Risk.RISKY


def test_unapplying_a_rename_renames_back() -> None:
    report = reverse_of("0017_rename_coupon_percent_off_discount_percent")
    assert "SM203" in codes(report)
    rename = next(f for f in report.findings if f.code == "SM203")
    assert "percent_off" in (rename.sql or "")


def test_a_reverse_in_python_is_a_data_migration() -> None:
    report = reverse_of("0011_backfill_customer_email_normalized")
    finding = next(f for f in report.findings if f.code == "SM401")
    assert "clear_email_normalized" in finding.message
    # What is only about applying it (no reverse) is not reported on its reverse.
    assert "SM402" not in codes(report)


def test_every_example_migration_can_be_unapplied() -> None:
    loader = MigrationLoader(connection)
    shop = [m for key, m in loader.disk_migrations.items() if key[0] == "shop"]
    assert irreversible(shop) == []
