"""``checkmigrations --roundtrip``: apply, unapply one by one, apply again, on a throwaway
database; every reverse must give back the schema its migration started from.

``rt_shop.0003_reprice`` drops an index with ``RunSQL`` and its reverse forgets to create
it again; ``rt_shop.0004_name_without_default`` drops a column default and its reverse
forgets it. ``rt_oneway.0002_welcome_note`` is a ``RunPython`` without a reverse. The
example site's whole history must pass.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import (
    applied,
    command_env,
    copy_scenario,
    fresh_database,
    query,
    run_command,
    start_command,
    table_exists,
    wait_for,
)

pytestmark = pytest.mark.django_db(transaction=True)

SCENARIO_APPS = ["rt_shop", "rt_oneway", "slow"]


def throwaway_databases(source: str) -> set[str]:
    """The throwaway databases made for checks of ``source`` (their comment names it)."""
    rows = query(
        "postgres",
        "SELECT datname FROM pg_database WHERE datname LIKE 'safemigrate%%' "
        "AND shobj_description(oid, 'pg_database') LIKE %s",
        [f"django_safemigrate throwaway database for {source}, %"],
    )
    return {name for (name,) in rows}


@pytest.fixture
def database() -> Iterator[str]:
    with fresh_database("sm_roundtrip") as name:
        yield name
        # Every run dropped its throwaway database, however it ended.
        assert throwaway_databases(name) == set()


@pytest.fixture
def env(database: str, tmp_path: Path) -> dict[str, str]:
    for app in SCENARIO_APPS:
        copy_scenario(app, tmp_path)
    return command_env(database, apps=SCENARIO_APPS, pythonpath=[tmp_path])


def roundtrip(env: dict[str, str], cwd: Path, *args: str, expect: int) -> str:
    result = run_command(["checkmigrations", "--roundtrip", *args], env, expect=expect, cwd=cwd)
    assert "Traceback" not in result.output, result.output
    return result.output


def test_a_reverse_that_forgets_an_index_or_a_default_is_caught_and_named(database, env, tmp_path):
    output = roundtrip(env, tmp_path, "rt_shop", expect=1)
    assert (
        "rt_shop/migrations/0003_reprice.py:1: roundtrip rt_shop.0003_reprice: the reverse does "
        "not restore the schema" in output
    )
    assert (
        "index rt_shop_item_sku_idx on rt_shop_item missing after reverse of rt_shop.0003_reprice"
        in output
    )
    assert (
        "column rt_shop_item.name different after reverse of rt_shop.0004_name_without_default: "
        "default \"''::character varying\" before, none after" in output
    )
    # Each difference is named once, on the migration that made it.
    assert output.count("rt_shop_item.name different") == 1
    assert output.count("rt_shop_item_sku_idx on rt_shop_item missing") == 1
    assert "0005_item_note: roundtrip" not in output
    assert "0001_initial: roundtrip" not in output
    assert "2 do not" in output
    # The configured database was not touched: the walk ran elsewhere.
    assert applied(database) == []
    assert not table_exists(database, "rt_shop_item")


def test_json_names_every_migration_and_difference(env, tmp_path):
    output = roundtrip(env, tmp_path, "rt_shop", "--format", "json", expect=1)
    report = _json(output)
    assert report["schema_version"] == 1
    assert report["check"] == "roundtrip"
    assert report["database"]["vendor"] == "postgresql"
    states = {m["name"]: (m["applied"], m["reverse"], m["reapply"]) for m in report["migrations"]}
    assert states == {
        "0001_initial": ("applied", "restored", "skipped"),
        "0002_item_sku_index": ("applied", "restored", "skipped"),
        "0003_reprice": ("applied", "not_restored", "skipped"),
        "0004_name_without_default": ("applied", "not_restored", "skipped"),
        "0005_item_note": ("applied", "restored", "skipped"),
    }
    reprice = next(m for m in report["migrations"] if m["name"] == "0003_reprice")
    assert reprice["ok"] is False
    assert reprice["path"].endswith("rt_shop/migrations/0003_reprice.py")
    (difference,) = reprice["reverse_differences"]
    assert difference["kind"] == "index"
    assert difference["name"] == "rt_shop_item_sku_idx"
    assert difference["change"] == "missing"
    assert difference["table"] == "rt_shop_item"
    assert difference["found"] is None
    assert "USING btree (sku)" in difference["expected"]["definition"]
    (default,) = next(m for m in report["migrations"] if m["name"].startswith("0004"))[
        "reverse_differences"
    ]
    assert default["change"] == "different"
    assert default["fields"] == ["default"]
    assert report["summary"] == {
        "migrations": 5,
        "restored": 3,
        "not_restored": 2,
        "irreversible": 0,
        "failed": 2,
        "ok": False,
    }


def test_github_annotates_the_migration_file(env, tmp_path):
    output = roundtrip(env, tmp_path, "rt_shop", "--format", "github", expect=1)
    lines = [line for line in output.splitlines() if line.startswith("::error ")]
    assert len(lines) == 2
    assert lines[0].startswith(
        "::error file=rt_shop/migrations/0003_reprice.py,line=1,"
        "title=roundtrip rt_shop.0003_reprice::"
    )
    assert "index rt_shop_item_sku_idx on rt_shop_item missing" in lines[0]


def test_an_irreversible_migration_stops_the_walk_back_and_is_named(env, tmp_path):
    output = roundtrip(env, tmp_path, "rt_oneway", expect=1)
    assert (
        "rt_oneway/migrations/0002_welcome_note.py:1: roundtrip rt_oneway.0002_welcome_note: "
        "irreversible (operation 1 (RunPython) cannot be unapplied); the walk back stops here"
        in output
    )
    report = _json(roundtrip(env, tmp_path, "rt_oneway", "--format", "json", expect=1))
    states = {m["name"]: (m["reverse"], m["reapply"]) for m in report["migrations"]}
    # The one after it was unapplied and applied again; the one before it never unapplied.
    assert states == {
        "0001_initial": ("not_reached", "not_reached"),
        "0002_welcome_note": ("irreversible", "not_reached"),
        "0003_note_title": ("restored", "same"),
    }
    assert report["summary"]["irreversible"] == 1


def _json(output: str) -> dict:
    return json.loads(output[: output.rindex("}") + 1])


def test_by_default_the_unapplied_migrations_walk_from_the_applied_ones(database, env, tmp_path):
    run_command(["migrate", "rt_shop", "0002", "-v", "0"], env, expect=0)
    report = _json(roundtrip(env, tmp_path, "--format", "json", expect=1))
    # The applied rt_shop.0001 and 0002 are the starting point; the other apps' migrations
    # (not applied) are walked with rt_shop's.
    walked = {(m["app_label"], m["name"]) for m in report["migrations"]}
    assert ("rt_shop", "0003_reprice") in walked
    assert ("rt_shop", "0002_item_sku_index") not in walked
    assert ("rt_shop", "0001_initial") not in walked
    assert report["starting_point"] == 2
    # Only read: the database is as migrate left it.
    assert applied(database, "rt_shop") == [
        ("rt_shop", "0001_initial"),
        ("rt_shop", "0002_item_sku_index"),
    ]


def test_one_migration_walks_from_what_it_depends_on(env, tmp_path):
    report = _json(roundtrip(env, tmp_path, "rt_shop", "0005", "--format", "json", expect=0))
    assert report["starting_point"] == 4
    assert [(m["name"], m["reverse"], m["reapply"]) for m in report["migrations"]] == [
        ("0005_item_note", "restored", "same")
    ]


def test_the_example_sites_history_passes(tmp_path):
    with fresh_database("sm_roundtrip") as database:
        env = command_env(database, module="example_site.settings")
        result = run_command(
            ["checkmigrations", "--roundtrip", "--all", "--format", "json"], env, expect=0
        )
    report = _json(result.out)
    shop = [m for m in report["migrations"] if m["app_label"] == "shop"]
    assert len(shop) >= 34
    assert all(m["reverse"] == "restored" and m["reapply"] == "same" for m in report["migrations"])
    assert report["summary"]["ok"] is True


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nosuchapp"], "There is no installed app with label 'nosuchapp'"),
        (["rt_shop", "0009"], "0009"),
        (["--all", "--offline"], "cannot run --offline"),
        (["--all", "--format", "sarif"], "not sarif"),
    ],
)
def test_bad_input_is_a_usage_error(env, tmp_path, args, message):
    output = roundtrip(env, tmp_path, *args, expect=2)
    assert message in output


def test_a_broken_migration_is_a_usage_error(database, tmp_path):
    copy_scenario("broken", tmp_path)
    env = command_env(database, apps=["broken"], pythonpath=[tmp_path])
    output = roundtrip(env, tmp_path, "--all", expect=2)
    assert "Nothing was checked." in output


def test_an_unreachable_server_is_a_usage_error(env, tmp_path):
    env = {**env, "DATABASE_URL": "postgres://postgres@127.0.0.1:1/nowhere"}
    output = roundtrip(env, tmp_path, "--all", expect=2)
    assert "Cannot connect to database" in output
    assert "throwaway database" in output


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_the_throwaway_database_is_dropped_when_the_run_is_interrupted(
    database, env, tmp_path, signum
):
    process = start_command(
        ["checkmigrations", "--roundtrip", "slow"], {**env, "SLOW_SECONDS": "600"}
    )
    try:

        def sleeping_in_slow_0002() -> bool:
            return any(table_exists(name, "slow_item") for name in throwaway_databases(database))

        wait_for(sleeping_in_slow_0002, timeout=120)
        process.send_signal(signum)
        process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode != 0
    assert throwaway_databases(database) == set()


def test_migrations_between_selected_ones_are_walked_too(env, tmp_path):
    files = [
        str(tmp_path / "rt_shop" / "migrations" / "0002_item_sku_index.py"),
        str(tmp_path / "rt_shop" / "migrations" / "0005_item_note.py"),
    ]
    report = _json(roundtrip(env, tmp_path, *files, "--format", "json", expect=1))
    # 0003 and 0004 depend on 0002 and 0005 depends on them: they are walked, not selected.
    assert report["starting_point"] == 1
    assert [(m["name"], m["selected"]) for m in report["migrations"]] == [
        ("0002_item_sku_index", True),
        ("0003_reprice", False),
        ("0004_name_without_default", False),
        ("0005_item_note", True),
    ]
