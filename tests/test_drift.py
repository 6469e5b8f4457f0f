"""``checkmigrations --drift`` and ``SAFEMIGRATE['DRIFT']`` before a deploy.

The ``basic`` scenario is applied up to ``basic.0002_item_price``; then the database is
changed by hand (an index, a column, a default) and compared with what those migrations
build on a throwaway database. The comparison only reads the live database.
"""

from __future__ import annotations

import json
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
    schema_of,
    table_exists,
    url_for,
)

pytestmark = pytest.mark.django_db(transaction=True)

APP = "basic"

HAND_MADE = {
    "index": (
        "CREATE INDEX basic_item_hand_idx ON basic_item (name)",
        "extra index basic_item_hand_idx on basic_item in the database, which no applied "
        "migration builds (CREATE INDEX basic_item_hand_idx ON public.basic_item USING btree "
        "(name))",
    ),
    "column": (
        "ALTER TABLE basic_item ADD COLUMN note text",
        "extra column basic_item.note in the database, which no applied migration builds (text)",
    ),
    "default": (
        "ALTER TABLE basic_item ALTER COLUMN price SET DEFAULT 5",
        "different column basic_item.price in the database: default none from the migrations, "
        "'5' in the database",
    ),
}


@pytest.fixture
def database() -> Iterator[str]:
    with fresh_database("sm_drift") as name:
        yield name


@pytest.fixture
def env(database: str, tmp_path: Path) -> dict[str, str]:
    copy_scenario(APP, tmp_path)
    env = command_env(database, apps=[APP], pythonpath=[tmp_path])
    run_command(["safemigrate", APP, "0002"], env, expect=0)
    return env


def drift(env: dict[str, str], *args: str, expect: int) -> str:
    result = run_command(["checkmigrations", "--drift", *args], env, expect=expect)
    assert "Traceback" not in result.output, result.output
    return result.output


def with_settings(env: dict[str, str], settings: dict[str, object]) -> dict[str, str]:
    return {**env, "SAFEMIGRATE_JSON": json.dumps(settings)}


def test_no_drift_after_the_migrations(database, env):
    output = drift(env, expect=0)
    assert f"/{database}) has the schema its " in output
    assert output.startswith("No drift: 'default' (")


@pytest.mark.parametrize("change", sorted(HAND_MADE))
def test_a_hand_made_change_is_caught_and_named(database, env, change):
    statement, line = HAND_MADE[change]
    query(database, statement)
    output = drift(env, expect=1)
    assert line in output
    assert "Drift: 'default'" in output


def test_every_change_at_once_in_json(database, env):
    for statement, _ in HAND_MADE.values():
        query(database, statement)
    output = drift(env, "--format", "json", expect=1)
    report = json.loads(output[: output.rindex("}") + 1])
    assert report["schema_version"] == 1
    assert report["check"] == "drift"
    # contenttypes, auth and this app's migrations, and basic's first two.
    assert report["applied_migrations"] == len(applied(database))
    found = {(d["change"], d["kind"], d["name"]) for d in report["differences"]}
    assert found == {
        ("extra", "index", "basic_item_hand_idx"),
        ("extra", "column", "basic_item.note"),
        ("different", "column", "basic_item.price"),
    }
    price = next(d for d in report["differences"] if d["name"] == "basic_item.price")
    assert price["fields"] == ["default"]
    assert price["expected"]["default"] == ""
    assert price["found"]["default"] == "5"
    assert report["summary"] == {"extra": 2, "missing": 0, "different": 1, "drift": True}


def test_a_dropped_object_is_missing(database, env):
    query(database, "ALTER TABLE basic_item DROP COLUMN price")
    output = drift(env, expect=1)
    assert (
        "missing column basic_item.price from the database, which its applied migrations build"
        in output
    )


def test_github_annotations(database, env):
    query(database, HAND_MADE["index"][0])
    output = drift(env, "--format", "github", expect=1)
    assert "::error title=drift%3A extra index basic_item_hand_idx::extra index" in output


def test_the_ignore_list_leaves_out_what_it_names(database, env):
    query(database, HAND_MADE["index"][0])
    query(database, HAND_MADE["column"][0])
    ignoring = with_settings(env, {"DRIFT_IGNORE": ["basic_item_hand_*"]})
    output = drift(ignoring, expect=1)
    assert "basic_item_hand_idx" not in output
    assert "basic_item.note" in output
    assert "1 difference(s) left out by SAFEMIGRATE['DRIFT_IGNORE']" in output
    # A table's pattern covers its columns.
    ignoring = with_settings(env, {"DRIFT_IGNORE": ["basic_item_hand_*", "basic_item.note"]})
    assert "No drift" in drift(ignoring, expect=0)


def test_the_analysis_only_reads_the_live_database(database, env):
    query(database, HAND_MADE["index"][0])
    before = schema_of(database)
    rows_before = applied(database)
    # Any write on this database now fails: the check still works.
    query("postgres", f'ALTER DATABASE "{database}" SET default_transaction_read_only = on')
    try:
        output = drift(env, expect=1)
    finally:
        query("postgres", f'ALTER DATABASE "{database}" RESET default_transaction_read_only')
    assert "extra index basic_item_hand_idx" in output
    assert schema_of(database) == before
    assert applied(database) == rows_before


def test_drift_takes_no_selection(env):
    output = drift(env, "--all", expect=2)
    assert "--drift compares the whole database" in output


# -- before a deploy: SAFEMIGRATE["DRIFT"] -------------------------------------------------


def test_stop_refuses_to_deploy_onto_a_drifted_database(database, env):
    query(database, HAND_MADE["index"][0])
    # The ledger's own tables take the run's record; the rest stays as it was.
    schema = schema_of(database, exclude_prefixes=["django_safemigrate"])
    stopping = with_settings(env, {"DRIFT": "stop"})
    result = run_command(["safemigrate"], stopping, expect=3)
    assert "drifted from its migrations" in result.err
    assert "extra index basic_item_hand_idx on basic_item" in result.err
    assert "SAFEMIGRATE['DRIFT'] is 'stop', so nothing was applied" in result.err
    assert ("basic", "0003_item_sku") not in applied(database)
    assert schema_of(database, exclude_prefixes=["django_safemigrate"]) == schema
    # The run is recorded as blocked, with the reason.
    (run,) = query(
        database,
        "SELECT outcome, exit_code, message FROM django_safemigrate_run ORDER BY id DESC LIMIT 1",
    )
    assert run[:2] == ("blocked", 3)
    assert "drifted from its migrations" in run[2]


def test_warn_prints_the_drift_and_deploys(database, env):
    query(database, HAND_MADE["default"][0])
    result = run_command(["safemigrate"], with_settings(env, {"DRIFT": "warn"}), expect=0)
    assert "Warning: 'default'" in result.err
    assert "different column basic_item.price" in result.err
    assert ("basic", "0003_item_sku") in applied(database)
    assert table_exists(database, "basic_item")


def test_stop_deploys_a_database_that_did_not_drift(database, env):
    result = run_command(["safemigrate"], with_settings(env, {"DRIFT": "stop"}), expect=0)
    assert "drift" not in result.output
    assert ("basic", "0003_item_sku") in applied(database)


def test_off_by_default(database, env):
    query(database, HAND_MADE["index"][0])
    result = run_command(["safemigrate"], env, expect=0)
    assert "drift" not in result.output
    assert ("basic", "0003_item_sku") in applied(database)


def test_database_chooses_the_alias_to_compare(database, env):
    query(database, HAND_MADE["index"][0])
    with fresh_database("sm_drift") as other:
        two = {**env, "DATABASE_URL": url_for(other), "DIRECT_DATABASE_URL": url_for(database)}
        assert "No drift: 'default'" in drift(two, expect=0)
        output = drift(two, "--database", "direct", expect=1)
    assert "extra index basic_item_hand_idx" in output
    assert f"Drift: 'direct' (postgres@127.0.0.1:5432/{database})" in output
