"""``safemigrate`` over several databases: each governed on its own, one after the other.

Real processes against separate fresh databases on the test server; what happened is
read back from each database (``django_migrations``, the ledger's runs).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from django_safemigrate.execution.lock import lock_key
from tests.helpers import (
    applied,
    command_env,
    connect,
    copy_scenario,
    fresh_database,
    query,
    run_command,
    table_exists,
    url_for,
)

# Runs over several databases, one after the other: the same on every Django version,
# so CI runs them in its first pass only.
pytestmark = pytest.mark.once

APP = "fleet_shop"
ALIASES = ("default", "reports", "archive")
DROP = (APP, "0003_remove_product_legacy_code")
UNREACHABLE = "postgres://postgres@127.0.0.1:1/nowhere"


@pytest.fixture
def databases() -> Iterator[dict[str, str]]:
    """alias → a fresh database of its own."""
    with ExitStack() as stack:
        yield {alias: stack.enter_context(fresh_database("fleet")) for alias in ALIASES}


@pytest.fixture
def scenarios(tmp_path: Path) -> Path:
    copy_scenario(APP, tmp_path)
    return tmp_path


def env_for(databases: dict[str, str], scenarios: Path, **extra: str) -> dict[str, str]:
    others = {alias: url_for(name) for alias, name in databases.items() if alias != "default"}
    others.update(json.loads(extra.pop("more", "{}")))
    return command_env(
        databases["default"],
        apps=[APP],
        pythonpath=[scenarios],
        extra={"EXTRA_DATABASE_URLS": json.dumps(others), **extra},
    )


def several(*aliases: str) -> list[str]:
    args = ["safemigrate"]
    for alias in aliases:
        args += ["--database", alias]
    return args


def runs(database: str) -> list[tuple[str, str, str, int]]:
    """(command, database alias, outcome, exit code) of every ledger run, oldest first."""
    return query(
        database,
        "SELECT command, database, outcome, exit_code FROM django_safemigrate_run ORDER BY id",
    )


def block_on_reports(databases: dict[str, str], env: dict[str, str]) -> None:
    """``reports`` has completed its first deploy up to 0002: its 0003 (a dropped column,
    destructive) needs a review it does not have."""
    run_command(["safemigrate", APP, "0002", "--database", "reports"], env, expect=0)
    assert DROP not in applied(databases["reports"])


def test_every_database_is_applied_and_keeps_its_own_ledger(databases, scenarios, tmp_path):
    env = env_for(databases, scenarios)
    report = tmp_path / "report.json"
    result = run_command([*several(*ALIASES), "--report-json", str(report)], env, expect=0)
    for index, alias in enumerate(ALIASES, 1):
        assert f"Database '{alias}' ({index}/3):" in result.out
    assert "3 databases: applied 3" in result.out
    # One header per database, in the order given, each before its own migrations.
    positions = [result.out.index(f"Database '{alias}'") for alias in ALIASES]
    assert positions == sorted(positions)
    for alias, database in databases.items():
        assert DROP in applied(database)
        # Each database's ledger holds its own run, and only it.
        assert runs(database) == [("safemigrate", alias, "applied", 0)]
    document = json.loads(report.read_text())
    assert document["exit_code"] == 0
    assert [d["alias"] for d in document["databases"]] == list(ALIASES)
    for entry in document["databases"]:
        assert entry["outcome"] == "applied"
        assert entry["exit_code"] == 0
        assert entry["error"] is None
        assert "fleet_shop.0003_remove_product_legacy_code" in entry["applied"]


def test_a_blocked_database_does_not_stop_the_others(databases, scenarios, tmp_path):
    env = env_for(databases, scenarios)
    block_on_reports(databases, env)
    report = tmp_path / "report.json"
    result = run_command([*several(*ALIASES), "--report-json", str(report)], env, expect=3)
    assert "3 databases: applied 2, blocked 1 (reports: Blocked by governance" in result.err
    assert "Database 'reports' blocked (exit 3)" in result.err
    assert DROP in applied(databases["default"])
    assert DROP in applied(databases["archive"])
    assert DROP not in applied(databases["reports"])
    assert runs(databases["reports"])[-1] == ("safemigrate", "reports", "blocked", 3)
    document = json.loads(report.read_text())
    assert document["exit_code"] == 3
    outcomes = {d["alias"]: (d["outcome"], d["exit_code"]) for d in document["databases"]}
    assert outcomes == {
        "default": ("applied", 0),
        "reports": ("blocked", 3),
        "archive": ("applied", 0),
    }
    blocked = document["databases"][1]
    assert blocked["applied"] == []
    assert "fleet_shop.0003_remove_product_legacy_code" in blocked["error"]


def test_fail_fast_stops_after_the_first_database_that_does_not_succeed(
    databases, scenarios, tmp_path
):
    env = env_for(databases, scenarios)
    block_on_reports(databases, env)
    report = tmp_path / "report.json"
    order = ("reports", "default", "archive")
    result = run_command(
        [*several(*order), "--fail-fast", "--report-json", str(report)], env, expect=3
    )
    assert "Database 'default'" not in result.out
    assert "not run 2 (default; archive)" in result.err
    assert not table_exists(databases["default"], "django_migrations")
    assert not table_exists(databases["archive"], "django_migrations")
    document = json.loads(report.read_text())
    assert [(d["alias"], d["outcome"], d["exit_code"]) for d in document["databases"]] == [
        ("reports", "blocked", 3),
        ("default", "not_run", None),
        ("archive", "not_run", None),
    ]


def test_the_run_exits_with_the_most_severe_code(databases, scenarios, tmp_path):
    """A failed migration (1) outranks a blocked database (3)."""
    env = env_for(databases, scenarios)
    block_on_reports(databases, env)
    # On archive, 0002's table is already there: creating it fails.
    query(databases["archive"], "CREATE TABLE fleet_shop_note (id bigint)")
    report = tmp_path / "report.json"
    result = run_command([*several(*ALIASES), "--report-json", str(report)], env, expect=1)
    assert "applied 1, blocked 1 (reports: " in result.err
    assert "failed 1 (archive: Applying fleet_shop.0002_note failed" in result.err
    document = json.loads(report.read_text())
    assert document["exit_code"] == 1
    archive = document["databases"][2]
    assert (archive["outcome"], archive["exit_code"]) == ("failed", 1)
    assert archive["applied"][-1] == "fleet_shop.0001_initial"
    assert "Applying fleet_shop.0002_note failed" in archive["error"]
    assert runs(databases["archive"])[-1] == ("safemigrate", "archive", "failed", 1)
    assert DROP in applied(databases["default"])


def test_an_unreachable_database_is_reported_and_the_others_run(databases, scenarios, tmp_path):
    env = env_for(databases, scenarios, more=json.dumps({"gone": UNREACHABLE}))
    report = tmp_path / "report.json"
    result = run_command(
        [*several("default", "gone", "archive"), "--report-json", str(report)], env, expect=2
    )
    assert "unreachable 1 (gone: Cannot connect to database" in result.err
    assert "Traceback" not in result.output
    assert DROP in applied(databases["default"])
    assert DROP in applied(databases["archive"])
    assert not table_exists(databases["reports"], "django_migrations")
    document = json.loads(report.read_text())
    gone = document["databases"][1]
    assert (gone["alias"], gone["outcome"], gone["exit_code"]) == ("gone", "unreachable", 2)
    assert "Cannot connect to database" in gone["error"]


def test_all_databases_leaves_out_those_the_router_keeps_migrations_off(databases, scenarios):
    env = env_for(databases, scenarios, NO_MIGRATE_ALIASES="archive")
    result = run_command(["safemigrate", "--all-databases"], env, expect=0)
    assert "Left out database 'archive': its router allows no migrations on it." in result.out
    assert "2 databases: applied 2" in result.out
    assert DROP in applied(databases["default"])
    assert DROP in applied(databases["reports"])
    assert not table_exists(databases["archive"], "django_migrations")


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (
            [*several("default", "reports", "default")],
            "--database default was given more than once",
        ),
        (
            ["safemigrate", "--all-databases", "--database", "reports"],
            "cannot be combined with --database (reports)",
        ),
        (
            [*several("default", "reports"), "--lock-database", "default"],
            "--lock-database goes with one database",
        ),
        (
            [*several("default", "reports"), "--report-json", "/nonexistent/dir/report.json"],
            "--report-json /nonexistent/dir/report.json: its directory does not exist",
        ),
    ],
    ids=["same-alias-twice", "all-and-database", "lock-database", "report-path"],
)
def test_bad_input_is_one_paragraph_and_touches_nothing(databases, scenarios, args, said):
    env = env_for(databases, scenarios)
    result = run_command(args, env, expect=2)
    err = result.err.strip()
    assert err.startswith("CommandError: "), result.err
    assert "\n" not in err
    assert said in err
    assert "Nothing was read or changed." in err
    assert result.out == ""
    for database in databases.values():
        assert not table_exists(database, "django_migrations")


def test_an_unknown_alias_among_several_is_refused_before_any_database(databases, scenarios):
    # The alias is checked as a single --database is, by the option's own choices (so
    # this holds without several databases too: it guards that nothing runs first).
    env = env_for(databases, scenarios)
    result = run_command(several("default", "nope"), env, expect=2)
    assert "invalid choice: 'nope'" in result.err
    assert "Traceback" not in result.output
    for database in databases.values():
        assert not table_exists(database, "django_migrations")


def test_one_alias_runs_as_before_then_has_nothing_to_do_among_several(
    databases, scenarios, tmp_path
):
    env = env_for(databases, scenarios)
    alone = run_command(["safemigrate", "--database", "reports"], env, expect=0)
    assert "Database 'reports'" not in alone.out
    assert "databases:" not in alone.out
    assert DROP in applied(databases["reports"])
    assert not table_exists(databases["default"], "django_migrations")

    report = tmp_path / "report.json"
    result = run_command(
        [*several("reports", "default"), "--report-json", str(report)], env, expect=0
    )
    assert "2 databases: nothing to do 1, applied 1" in result.out
    document = json.loads(report.read_text())
    first = document["databases"][0]
    assert (first["alias"], first["outcome"], first["applied"]) == ("reports", "nothing_to_do", [])
    assert runs(databases["reports"]) == [
        ("safemigrate", "reports", "applied", 0),
        ("safemigrate", "reports", "nothing_to_do", 0),
    ]
    assert runs(databases["default"]) == [("safemigrate", "default", "applied", 0)]


def test_a_lock_held_elsewhere_outranks_a_blocked_database(databases, scenarios, tmp_path):
    """One database's lock is held by another session: that database times out (4), the
    others run; 4 outranks blocked (3)."""
    env = env_for(databases, scenarios)
    run_command(["safemigrate", APP, "0002", "--database", "archive"], env, expect=0)
    report = tmp_path / "report.json"
    with connect(databases["reports"]) as holder:
        key = lock_key(databases["reports"], "public")
        holder.execute("SELECT pg_advisory_lock(%s)", [key])
        result = run_command(
            [*several(*ALIASES), "--lock-wait", "0", "--report-json", str(report)], env, expect=4
        )
    assert "lock timeout 1 (reports: " in result.err
    assert "blocked 1 (archive: " in result.err
    assert DROP in applied(databases["default"])
    assert not table_exists(databases["reports"], "django_migrations")
    outcomes = [(d["outcome"], d["exit_code"]) for d in json.loads(report.read_text())["databases"]]
    assert outcomes == [("applied", 0), ("lock_timeout", 4), ("blocked", 3)]
