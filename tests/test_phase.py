"""A migration's phase: declared in its file, or inferred from what its SQL does."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import migrations, models

from django_safemigrate import Safe
from django_safemigrate.enums import Phase
from django_safemigrate.exceptions import UsageError
from tests.rules.judge import judge_report

ITEM = migrations.CreateModel(
    "Item",
    [
        ("id", models.BigAutoField(primary_key=True)),
        ("name", models.CharField(max_length=20, null=True)),
        ("legacy", models.CharField(max_length=20, null=True)),
    ],
)
LIVE = {"testapp_item": 50_000}

# The SQL is rendered with the test database's connection (introspection included).
pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("operation", "phase", "reason"),
    [
        (
            migrations.AddField("item", "sku", models.CharField(max_length=9, null=True)),
            Phase.PRE_DEPLOY,
            "additive",
        ),
        (migrations.RemoveField("item", "legacy"), Phase.POST_DEPLOY, "SM201 drops a column"),
        (migrations.RenameField("item", "legacy", "old"), Phase.POST_DEPLOY, "SM203 renames"),
        (migrations.AlterModelTable("item", "items"), Phase.POST_DEPLOY, "SM204 renames a table"),
        (migrations.DeleteModel("item"), Phase.POST_DEPLOY, "SM202 drops a table"),
        (
            migrations.AlterField("item", "name", models.CharField(max_length=20)),
            Phase.POST_DEPLOY,
            "makes a column of testapp_item NOT NULL",
        ),
        (
            migrations.RunSQL("ALTER TABLE testapp_item DROP COLUMN legacy"),
            Phase.POST_DEPLOY,
            "SM201",
        ),
        (
            migrations.AddIndex("item", models.Index(fields=["name"], name="item_name_idx")),
            Phase.PRE_DEPLOY,
            "additive",
        ),
    ],
)
def test_inferred_from_the_sql(operation, phase, reason):
    report = judge_report([operation], setup=[ITEM], tables=LIVE)
    assert report.phase is phase
    assert report.phase_reason.startswith("inferred: ")
    assert reason in report.phase_reason


def test_a_table_the_deploy_creates_has_no_old_code_to_break():
    # Live database without the table: it is created earlier in the same deploy.
    report = judge_report([migrations.RemoveField("item", "legacy")], setup=[ITEM], tables={})
    assert report.phase is Phase.PRE_DEPLOY


@pytest.mark.parametrize(
    ("attrs", "phase"),
    [
        ({"safemigrate_phase": "pre_deploy"}, Phase.PRE_DEPLOY),
        ({"safemigrate_phase": "always"}, Phase.ALWAYS),
        ({"safe": Safe.before_deploy()}, Phase.PRE_DEPLOY),
        ({"safe": Safe.before_deploy}, Phase.PRE_DEPLOY),  # the uncalled form
        ({"safe": Safe.always()}, Phase.ALWAYS),
        ({"safe": Safe.after_deploy(delay=timedelta(days=1))}, Phase.POST_DEPLOY),
        ({"safe": Safe.after_deploy(), "safemigrate_phase": "post_deploy"}, Phase.POST_DEPLOY),
    ],
)
def test_declared_in_the_file_wins(attrs, phase):
    drop = migrations.RemoveField("item", "legacy")
    report = judge_report([drop], setup=[ITEM], tables=LIVE, attrs=attrs)
    assert report.phase is phase
    assert report.phase_reason.startswith("declared: ")


@pytest.mark.parametrize(
    "attrs",
    [
        {"safemigrate_phase": "later"},
        {"safe": "before_deploy"},
        {"safe": True},
        {"safe": None},
        {"safe": Safe.before_deploy(), "safemigrate_phase": "post_deploy"},
    ],
)
def test_an_invalid_declaration_is_a_usage_error(attrs):
    with pytest.raises(UsageError, match="declares its phase wrongly"):
        judge_report([migrations.RemoveField("item", "legacy")], setup=[ITEM], attrs=attrs)


def test_without_inference_an_undeclared_migration_runs_in_either_phase():
    drop = migrations.RemoveField("item", "legacy")
    report = judge_report([drop], setup=[ITEM], tables=LIVE, infer_phase=False)
    assert report.phase is Phase.ALWAYS
