"""The analysis walks the history with its own project state; the SQL must be Django's.

``IncrementalState`` re-renders only what a change can affect, and keeps classes that
Django would re-render (see ``django_safemigrate/sql.py``). Both walks run in
``tests/walk_equivalence.py``, once with that state and once with Django's own
``ProjectState`` and a full ``clone()`` before each operation (what Django's executor and
``sqlmigrate`` do); every statement, render error and finding of every migration must be
the same. The histories: the ``sw_people``/``sw_shop`` scenario (a primary key whose type
changes under foreign keys, a multi-table child and a one-to-one primary key pointing at
that child, a ``to_field`` target that changes and is renamed, a renamed table and model, a
model pointing at itself), and generated projects.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import ROOT, copy_scenario
from tests.test_bench_generator import generator

SCRIPT = ROOT / "tests" / "walk_equivalence.py"
APPS = {"django_safemigrate", "auth", "contenttypes"}


def walk(mode: str, env: dict[str, str], cwd: Path) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), mode],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def sql_of(data: dict[str, Any], migration: str) -> list[str]:
    (found,) = [m for m in data["migrations"] if m["migration"] == migration]
    return [sql for op in found["operations"] for sql in op["sql"]]


@pytest.fixture(scope="module")
def scenario_walks(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    where = tmp_path_factory.mktemp("state_walk")
    copy_scenario("sw_people", where)
    copy_scenario("sw_shop", where)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SAFEMIGRATE_", "SCENARIO_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="tests.scenario_settings",
        SCENARIO_APPS="sw_people,sw_shop",
        PYTHONPATH=os.pathsep.join([str(where), str(ROOT)]),
    )
    return {mode: walk(mode, env, ROOT) for mode in ("incremental", "django")}


def test_scenario_walks_render_what_django_renders(
    scenario_walks: dict[str, dict[str, Any]],
) -> None:
    incremental, django = scenario_walks["incremental"], scenario_walks["django"]
    assert [m["migration"] for m in incremental["migrations"]] == [
        m["migration"] for m in django["migrations"]
    ]
    for ours, theirs in zip(incremental["migrations"], django["migrations"], strict=True):
        assert ours == theirs, ours["migration"]
    assert incremental["final_models"] == django["final_models"]


def test_a_primary_key_type_change_alters_every_column_that_follows_it(
    scenario_walks: dict[str, dict[str, Any]],
) -> None:
    sql = sql_of(scenario_walks["incremental"], "sw_people.0004_referenced_changes")
    for table, column in (
        ("sw_people_person", "id"),
        ("sw_shop_order", "person_id"),
        ("sw_shop_order_buyers", "person_id"),
        ("sw_people_member", "person_ptr_id"),  # the multi-table child's parent link
        ("sw_people_badge", "member_id"),  # a one-to-one primary key to that child
        ("sw_shop_item", "badge_id"),  # and a foreign key to that one
    ):
        assert any(
            s.startswith(f'ALTER TABLE "{table}" ALTER COLUMN "{column}" TYPE bigint') for s in sql
        ), (table, column, sql)
    # The foreign keys are dropped first and created again after.
    assert any("DROP CONSTRAINT" in s and "sw_shop_order_person_id" in s for s in sql)
    assert any(
        s.startswith('ALTER TABLE "sw_shop_order" ADD CONSTRAINT') and "person_id" in s for s in sql
    )


def test_a_to_field_target_change_alters_the_foreign_key_column(
    scenario_walks: dict[str, dict[str, Any]],
) -> None:
    widened = sql_of(scenario_walks["incremental"], "sw_people.0004_referenced_changes")
    assert 'ALTER TABLE "sw_shop_order" ALTER COLUMN "team_id" TYPE varchar(20)' in " ".join(
        widened
    )
    renamed = sql_of(scenario_walks["incremental"], "sw_people.0005_renames")
    assert 'ALTER TABLE "sw_shop_order" ALTER COLUMN "team_id" TYPE varchar(40)' in " ".join(
        renamed
    )


# The longer history once (CI's first pass); the shorter one on every Django.
@pytest.mark.parametrize(
    ("size", "seed"), [pytest.param(300, 11, marks=pytest.mark.once), (150, 5)]
)
def test_generated_history_walks_render_what_django_renders(
    tmp_path: Path, size: int, seed: int
) -> None:
    root = tmp_path / "project"
    generator.generate_project(root, size, seed=seed)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(DJANGO_SETTINGS_MODULE="project.settings", PYTHONPATH=str(root))
    incremental, django = (walk(mode, env, root) for mode in ("incremental", "django"))
    generated = [m for m in incremental["migrations"] if m["migration"].split(".")[0] not in APPS]
    assert len(generated) == size
    for ours, theirs in zip(incremental["migrations"], django["migrations"], strict=True):
        assert ours == theirs, ours["migration"]


def test_swappable_names_read_from_one_pass_are_djangos():
    from django.apps import apps
    from django.apps.registry import Apps

    from django_safemigrate.sql import swappable_names_at_once

    djangos = Apps.get_swappable_settings_name.__wrapped__  # type: ignore[attr-defined]
    labels = [m._meta.label for m in apps.get_models(include_swapped=True)]
    labels += ["auth.user", "AUTH.USER", "auth.group", "nosuch.model"]
    with swappable_names_at_once():
        assert "get_swappable_settings_name" in vars(apps)
        answers = {label: apps.get_swappable_settings_name(label) for label in labels}
        apps.clear_cache()  # Django's way to expire the answers: still answers the same
        assert apps.get_swappable_settings_name("auth.User") == "AUTH_USER_MODEL"
    assert "get_swappable_settings_name" not in vars(apps)
    assert answers == {label: djangos(apps, label) for label in labels}
    assert answers["auth.user"] == "AUTH_USER_MODEL"
    assert answers["auth.group"] is None


def test_a_renamed_field_leaves_the_together_options_as_djangos_rename_field():
    # Django 6.1 keeps them as a set of tuples, earlier versions as a list of lists; the
    # state's copy of rename_field follows the installed version.
    from django.db import models
    from django.db.migrations.state import ModelState, ProjectState

    from django_safemigrate.sql import IncrementalState

    def renamed(state: ProjectState) -> dict[str, Any]:
        fields = [
            ("id", models.AutoField(primary_key=True)),
            ("a", models.IntegerField()),
            ("b", models.IntegerField()),
        ]
        state.add_model(ModelState("shop", "item", fields, {"unique_together": {("a", "b")}}))
        state.rename_field("shop", "item", "a", "c")
        return state.models["shop", "item"].options

    ours, djangos = renamed(IncrementalState()), renamed(ProjectState())

    assert ours == djangos
    assert type(ours["unique_together"]) is type(djangos["unique_together"])
