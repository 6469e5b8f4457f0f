"""``migrate`` and ``safemigrate`` apply a plan walking the project state forward once.

Django's executor copies the whole project state before every operation and re-renders
every model related to a changed one; the walk copies what each operation changes and
re-renders what the SQL depends on (``django_safemigrate/execution/walk.py``). What must
not change: the schema (compared with what Django's own ``migrate`` builds), and what
``RunPython`` code sees (the registry Django would give it: every relation leading to the
registry's current class, with its reverse accessors).
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import (
    ROOT,
    command_env,
    copy_scenario,
    fresh_database,
    query,
    run_command,
    schema_of,
)
from tests.test_bench_generator import generator

REGISTRY_SCRIPT = ROOT / "tests" / "registry_equivalence.py"

#: Django's own migrate command (not the override), run the way manage.py runs it.
CORE_MIGRATE = (
    "import sys, django; django.setup(); "
    "from django.core.management.commands.migrate import Command; "
    "Command().run_from_argv(['manage.py', 'migrate', *sys.argv[1:]])"
)

#: Counts ``ProjectState.clone()`` calls (Django's executor makes one per operation) while
#: the test databases are created as ``manage.py test`` and pytest-django create them.
COUNT_CLONES = """
import json, sys, django
django.setup()
from django.db.migrations.state import ProjectState
calls = []
original = ProjectState.clone
def counting(self):
    calls.append(1)
    return original(self)
ProjectState.clone = counting
from django.test.utils import setup_databases, teardown_databases
old = setup_databases(verbosity=0, interactive=False)
teardown_databases(old, verbosity=0)
from django.db.migrations.loader import MigrationLoader
loader = MigrationLoader(None, ignore_no_migrations=True)
operations = sum(len(m.operations) for m in loader.disk_migrations.values())
print(json.dumps({"clones": len(calls), "operations": operations}))
"""


def registry_walk(mode: str, env: dict[str, str], cwd: Path) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, str(REGISTRY_SCRIPT), mode],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    found: dict[str, Any] = json.loads(result.stdout)
    return found


def scenario_env(where: Path, apps: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SAFEMIGRATE_", "SCENARIO_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="tests.scenario_settings",
        SCENARIO_APPS=apps,
        PYTHONPATH=os.pathsep.join([str(where), str(ROOT)]),
    )
    return env


@pytest.mark.parametrize(
    ("apps", "user_model"),
    [
        (("sw_people", "sw_shop", "la_orders"), None),
        # A swapped user model, renamed models and fields, a proxy of a model pointing at one.
        (("fa_people", "fa_shop"), "fa_people.Person"),
    ],
)
def test_code_gets_djangos_registry_on_the_scenario_histories(
    tmp_path: Path, apps: tuple[str, ...], user_model: str | None
) -> None:
    for name in apps:
        copy_scenario(name, tmp_path)
    env = scenario_env(tmp_path, ",".join(apps))
    if user_model:
        env["SCENARIO_AUTH_USER_MODEL"] = user_model
    settled = registry_walk("settled", env, ROOT)
    assert settled["compared"] >= 20
    assert settled["difference_count"] == 0, settled["differences"]
    # Without settling, the walked registry leads to replaced classes: the comparison sees it.
    assert registry_walk("unsettled", env, ROOT)["difference_count"] > 0


def test_code_gets_djangos_registry_on_a_generated_history(tmp_path: Path) -> None:
    root = tmp_path / "project"
    generator.generate_project(root, 150, seed=5)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(DJANGO_SETTINGS_MODULE="project.settings", PYTHONPATH=str(root))
    settled = registry_walk("settled", env, root)
    assert settled["compared"] >= 100
    assert settled["difference_count"] == 0, settled["differences"]
    assert registry_walk("unsettled", env, root)["difference_count"] > 0


@pytest.fixture
def orders(tmp_path: Path) -> Path:
    copy_scenario("la_orders", tmp_path)
    return tmp_path


def same_schema(ours: str, core: str) -> bool:
    """The two schemas match, but for the ledger's comment on ``django_migrations`` (written
    by this package's commands, not by migrations)."""
    left_out = ("django_migrations",)
    return schema_of(ours, exclude_relations=left_out) == schema_of(
        core, exclude_relations=left_out
    )


def core_migrate(database: str, where: Path) -> None:
    env = command_env(database, apps=["la_orders"], pythonpath=[where])
    result = subprocess.run(
        [sys.executable, "-c", CORE_MIGRATE, "-v", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("command", ["migrate", "safemigrate"])
def test_data_migrations_use_the_relations_as_under_django(orders: Path, command: str) -> None:
    with fresh_database("la_core") as core, fresh_database("la_ours") as ours:
        core_migrate(core, orders)
        env = command_env(ours, apps=["la_orders"], pythonpath=[orders])
        result = run_command([command, "-v", "2"], env, expect=0)
        # The project's own operation is applied the way Django's executor applies it.
        assert "la_orders.0003_order_note: applied as Django's executor applies it" in result.out, (
            result.out
        )
        assert "operation 1 (CommentOnTable) is not one of Django's" in result.out
        assert same_schema(ours, core)
        rows = (
            "SELECT c.name, c.vip, o.total, o.note FROM la_orders_order o "
            "JOIN la_orders_customer c ON c.id = o.customer_id"
        )
        assert query(ours, rows) == query(core, rows) == [("Ada", True, 5, "for Ada")]
        comment = "SELECT obj_description('la_orders_order'::regclass, 'pg_class')"
        assert query(ours, comment) == [("orders placed",)]


def test_linear_apply_off_applies_as_django_does(orders: Path) -> None:
    with fresh_database("la_core") as core, fresh_database("la_off") as off:
        core_migrate(core, orders)
        env = command_env(
            off, apps=["la_orders"], pythonpath=[orders], settings={"LINEAR_APPLY": False}
        )
        result = run_command(["migrate", "-v", "2"], env, expect=0)
        assert "applied as Django's executor applies it" not in result.out
        assert same_schema(off, core)


def clones_while_creating_test_databases(where: Path, settings: dict[str, Any]) -> dict[str, int]:
    # Test databases are named after the configured one: a name of this test's own.
    env = command_env(
        f"la_clones_{secrets.token_hex(4)}",
        apps=["la_orders", "sw_people", "sw_shop"],
        pythonpath=[where],
        settings=settings,
    )
    result = subprocess.run(
        [sys.executable, "-c", COUNT_CLONES],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    counted: dict[str, int] = json.loads(result.stdout.strip().splitlines()[-1])
    return counted


def test_test_databases_are_created_by_the_walk(tmp_path: Path) -> None:
    for name in ("sw_people", "sw_shop", "la_orders"):
        copy_scenario(name, tmp_path)
    walked = clones_while_creating_test_databases(tmp_path, {})
    django_way = clones_while_creating_test_databases(tmp_path, {"LINEAR_APPLY": False})
    # Django's executor copies the whole state once per operation; the walk copies it only
    # for the few operations it does not know (and Django's command clones it once or twice).
    assert django_way["clones"] >= walked["operations"]
    assert walked["clones"] < django_way["clones"] / 5, (walked, django_way)
