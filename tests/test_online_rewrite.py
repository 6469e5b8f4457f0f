"""The online rewrite's decisions that need no server run (a rendering with Django's editor)."""

from __future__ import annotations

import pytest
from django.db import connection, migrations, models
from django.db.migrations.state import ModelState, ProjectState

from django_safemigrate.online.forms import NotOnline, OnlineForm
from django_safemigrate.online.rewrite import (
    UNREADABLE,
    OnlinePlanError,
    RewriteContext,
    rewrite_migration,
)
from django_safemigrate.sql import render_migration

pytestmark = pytest.mark.django_db


def _state() -> ProjectState:
    state = ProjectState()
    state.add_model(
        ModelState(
            "shop",
            "Item",
            [("id", models.BigAutoField(primary_key=True)), ("qty", models.IntegerField())],
        )
    )
    return state


def _plan(operations, **context):
    migration = type("Migration", (migrations.Migration,), {"operations": operations})(
        "0002_x", "shop"
    )
    rendered, _ = render_migration(migration, _state(), connection)
    ctx = RewriteContext(pg_version=15, connection=connection, **context)
    return rewrite_migration(rendered, ctx)


BIGINT = migrations.AlterField("item", "qty", models.BigIntegerField())


def test_a_runner_that_cannot_read_the_catalogs_stops_instead_of_guessing():
    with pytest.raises(OnlinePlanError, match="could not be read"):
        _plan([BIGINT], facts=lambda *args: UNREADABLE, strict=True)


def test_the_analysis_reports_unreadable_catalogs_as_no_online_form():
    units = _plan([BIGINT], facts=lambda *args: UNREADABLE)[0].units
    assert isinstance(units[0], NotOnline)
    assert "could not be read" in units[0].reason


def test_a_runner_does_not_plan_a_column_missing_from_the_catalogs():
    with pytest.raises(OnlinePlanError, match="not in the catalogs"):
        _plan([BIGINT], facts=lambda *args: None, strict=True)


def test_without_a_database_the_sequence_for_the_column_alone_is_shown():
    units = _plan([BIGINT])[0].units
    assert isinstance(units[0], OnlineForm)
    assert "SM107" in units[0].resolves


def test_a_column_added_in_the_same_migration_has_no_online_type_change():
    operations = [
        migrations.AddField("item", "size", models.IntegerField(null=True)),
        migrations.AlterField("item", "size", models.BigIntegerField(null=True)),
    ]
    plan = _plan(operations)
    refusal = plan[1].units[0]
    assert isinstance(refusal, NotOnline)
    assert "added earlier in the same migration" in refusal.reason


def test_a_table_created_in_the_same_migration_keeps_the_plain_forms():
    operations = [
        migrations.CreateModel("Tag", [("id", models.BigAutoField(primary_key=True))]),
        migrations.AddIndex("tag", models.Index(fields=["id"], name="tag_id_idx")),
    ]
    assert _plan(operations) == {}
