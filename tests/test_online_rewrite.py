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


def _zdm_statements(operations) -> list[str]:
    """What django-pg-zero-downtime-migrations' editor emits for ``operations``."""
    from django.db import connections
    from django.db.utils import load_backend

    engine = "django_zero_downtime_migrations.backends.postgres"
    settings = {**connections["default"].settings_dict, "ENGINE": engine}
    zdm = load_backend(engine).DatabaseWrapper(settings, "default")
    try:
        migration = type("Migration", (migrations.Migration,), {"operations": operations})(
            "0002_x", "shop"
        )
        rendered, _ = render_migration(migration, _state_with_columns(), zdm)
        assert not any(op.render_error for op in rendered), [op.render_error for op in rendered]
        return [_normal(s.sql) for op in rendered for s in op.statements]
    finally:
        zdm.close()


def _state_with_columns() -> ProjectState:
    state = ProjectState()
    state.add_model(
        ModelState(
            "shop",
            "Category",
            [("id", models.BigAutoField(primary_key=True))],
        )
    )
    state.add_model(
        ModelState(
            "shop",
            "Item",
            [
                ("id", models.BigAutoField(primary_key=True)),
                ("qty", models.IntegerField(null=True)),
                ("code", models.CharField(max_length=20, null=True)),
            ],
        )
    )
    return state


def _normal(sql: str) -> str:
    from pglast.stream import RawStream

    from django_safemigrate.sql import parse

    return str(RawStream()(parse(sql)[0].tree))


def _ours(operations) -> list[str]:
    migration = type("Migration", (migrations.Migration,), {"operations": operations})(
        "0002_x", "shop"
    )
    rendered, _ = render_migration(migration, _state_with_columns(), connection)
    plan = rewrite_migration(rendered, RewriteContext(pg_version=15, connection=connection))
    statements = []
    for op in rendered:
        units = plan[op.index].units if op.index in plan else op.statements
        for unit in units:
            if isinstance(unit, OnlineForm):
                statements += [_normal(sql) for step in unit.steps for sql in step.statements]
            else:
                statements.append(_normal(unit.sql))
    return statements


@pytest.mark.parametrize(
    "operation",
    [
        migrations.AddIndex("item", models.Index(fields=["qty"], name="item_qty_idx")),
        migrations.AddConstraint(
            "item", models.UniqueConstraint(fields=["code"], name="item_code_uniq")
        ),
        migrations.AddConstraint(
            "item", models.CheckConstraint(condition=models.Q(qty__gte=0), name="item_qty_gte_0")
        ),
        migrations.AlterField(
            "item", "code", models.CharField(max_length=20, null=True, unique=True)
        ),
    ],
    ids=["index", "unique constraint", "check", "unique=True"],
)
def test_online_forms_are_the_statements_the_zero_downtime_backend_emits(operation):
    """The forms built from Django's statements are the ones django-pg-zero-downtime-
    migrations' editor emits for the same operation."""
    assert _ours([operation]) == _zdm_statements([operation])


def test_set_not_null_is_the_zero_downtime_backends_sequence_but_for_the_checks_name():
    operation = migrations.AlterField("item", "qty", models.IntegerField())
    ours, theirs = _ours([operation]), _zdm_statements([operation])
    assert len(ours) == len(theirs) == 4

    def named(statements: list[str]) -> list[str]:
        out = []
        for sql in statements:
            words = [
                "<check>" if word.endswith("_notnull") else word
                for word in sql.replace("DROP CONSTRAINT IF EXISTS", "DROP CONSTRAINT").split()
            ]
            out.append(" ".join(words))
        return out

    assert named(ours) == named(theirs)
