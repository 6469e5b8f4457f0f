"""Every error on contract: the documented exit code, one paragraph, no traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import (
    applied,
    command_env,
    copy_scenario,
    fresh_database,
    query,
    run_command,
    table_exists,
)

UNREACHABLE = "postgres://postgres@127.0.0.1:1/nowhere"


def ident(value: object) -> str:
    return " ".join(value) if isinstance(value, list) else str(value)


@pytest.fixture
def database():
    with fresh_database() as name:
        yield name


@pytest.fixture
def scenarios(tmp_path: Path) -> Path:
    for name in ("basic", "cyclic", "conflicted", "badoverride", "ph_catalog"):
        copy_scenario(name, tmp_path)
    return tmp_path


def one_paragraph(result) -> str:
    """The error, checked for being one clean paragraph (no traceback, no blank line)."""
    assert "Traceback" not in result.output
    err = result.err.strip()
    assert err.startswith("CommandError: "), result.err
    assert "\n\n" not in err
    return " ".join(err.split())


# -- inconsistent history ------------------------------------------------------------------


def make_inconsistent(database: str, env: dict[str, str]) -> None:
    """basic.0003 recorded as applied, its dependency basic.0002 not."""
    run_command(["migrate", "basic"], env, expect=0)
    query(
        database, "DELETE FROM django_migrations WHERE app = 'basic' AND name = '0002_item_price'"
    )


@pytest.mark.parametrize(
    ("command", "code"),
    [
        (["safemigrate"], 2),
        (["safemigrate", "--plan"], 2),
        (["checkmigrations"], 2),
        (["migrate"], 1),
        (["migrate", "--plan"], 1),
    ],
    ids=ident,
)
def test_inconsistent_history_is_a_usage_error(database, scenarios, command, code):
    env = command_env(database, apps=["basic"], pythonpath=[scenarios])
    make_inconsistent(database, env)
    before = applied(database)
    result = run_command(command, env, expect=code)
    err = one_paragraph(result)
    assert "basic.0003_item_sku is applied before its dependency basic.0002_item_price" in err
    assert "does not fit the migration files" in err
    assert applied(database) == before


def test_inconsistent_history_stops_before_the_ledger_tables_are_created(database, scenarios):
    env = command_env(database, apps=["basic"], pythonpath=[scenarios])
    make_inconsistent(database, env)
    assert not table_exists(database, "django_safemigrate_run")
    result = run_command(["safemigrate"], env, expect=2)
    assert "Nothing was applied" in one_paragraph(result)
    assert not table_exists(database, "django_safemigrate_run")
    assert not applied(database, "django_safemigrate")


# -- the migrate override ---------------------------------------------------------------------


@pytest.mark.once  # nothing in it depends on the Django version
@pytest.mark.parametrize(
    "command", [["migrate"], ["migrate", "--plan"], ["migrate", "basic", "0002"]], ids=ident
)
def test_migrate_reports_an_unreachable_database_in_one_paragraph(scenarios, command):
    env = command_env(None, apps=["basic"], pythonpath=[scenarios], database_url=UNREACHABLE)
    result = run_command(command, env, expect=1)
    err = one_paragraph(result)
    assert "Cannot connect to database 'default'" in err
    assert "Nothing was applied" in err


@pytest.mark.once  # nothing in it depends on the Django version
@pytest.mark.parametrize(
    ("command", "code"),
    [(["migrate", "--lock-wait", "nan"], 1), (["safemigrate", "--lock-wait", "inf"], 2)],
    ids=ident,
)
def test_lock_wait_must_be_finite(database, scenarios, command, code):
    env = command_env(database, apps=["basic"], pythonpath=[scenarios])
    result = run_command(command, env, expect=code)
    assert "--lock-wait is" in one_paragraph(result)
    assert not table_exists(database, "django_migrations")


# -- a circular dependency --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "code"),
    [(["safemigrate"], 2), (["checkmigrations", "--all"], 2), (["migrate"], 1)],
    ids=ident,
)
def test_circular_dependency_names_the_migration_files(database, scenarios, command, code):
    env = command_env(database, apps=["cyclic"], pythonpath=[scenarios])
    result = run_command(command, env, expect=code)
    err = one_paragraph(result)
    assert "The migration dependencies form a circle" in err
    assert str(Path("cyclic", "migrations", "0002_node_name.py")) in err
    assert str(Path("cyclic", "migrations", "0003_node_label.py")) in err
    assert "graph.py" not in err
    assert not table_exists(database, "django_migrations")


# -- per-migration timeouts -------------------------------------------------------------------


@pytest.mark.once  # nothing in it depends on the Django version
@pytest.mark.parametrize(
    ("override", "said"),
    [
        ('{"lock_timeout": NaN}', "['lock_timeout'] is nan"),
        ('{"statement_timeout": Infinity}', "['statement_timeout'] is inf"),
        ('{"lock_timeout": 1e9}', "['lock_timeout'] is 1000000000.0"),
        ('{"lock_timeout": 0.0004}', "['lock_timeout'] is 0.0004"),
        ('{"retries": -1}', "['retries'] is -1"),
        ('{"lock_timout": 5}', "unknown key(s) 'lock_timout'"),
        ('"fast"', "to 'fast', but it must be a dict"),
    ],
)
def test_invalid_migration_timeouts_stop_before_anything_is_applied(
    database, scenarios, override, said
):
    env = command_env(
        database,
        apps=["badoverride"],
        pythonpath=[scenarios],
        extra={"BAD_OVERRIDE": override},
    )
    for command in (["safemigrate"], ["safemigrate", "--plan"]):
        result = run_command(command, env, expect=2)
        err = one_paragraph(result)
        assert "Migration badoverride.0002_thing_name" in err
        assert said in err
        assert "Nothing was applied" in err
    assert not table_exists(database, "django_migrations")


@pytest.mark.once  # nothing in it depends on the Django version
def test_valid_migration_timeouts_are_used(database, scenarios):
    override = json.dumps({"lock_timeout": 2.5, "statement_timeout": 0, "retries": 1})
    env = command_env(
        database, apps=["badoverride"], pythonpath=[scenarios], extra={"BAD_OVERRIDE": override}
    )
    result = run_command(["safemigrate", "--plan"], env, expect=0)
    assert "lock_timeout 2.5s over 2 attempts: AddField" in result.out
    run_command(["safemigrate"], env, expect=0)
    assert ("badoverride", "0002_thing_name") in applied(database)


# -- missing ledger tables --------------------------------------------------------------------


@pytest.mark.once  # nothing in it depends on the Django version
@pytest.mark.parametrize(
    ("command", "code"),
    [(["safemigrate"], 2), (["safemigrate", "--plan"], 2), (["migrate"], 1)],
    ids=ident,
)
def test_dropped_ledger_tables_are_named_not_a_lost_connection(database, scenarios, command, code):
    env = command_env(database, apps=["basic"], pythonpath=[scenarios])
    run_command(["safemigrate", "basic", "0001"], env, expect=0)
    query(database, "DROP TABLE django_safemigrate_steprecord, django_safemigrate_migrationrecord")
    before = applied(database)
    result = run_command(command, env, expect=code)
    err = one_paragraph(result)
    assert "Lost the connection" not in err
    assert (
        "The ledger table(s) django_safemigrate_migrationrecord, django_safemigrate_steprecord "
        "are missing" in err
    )
    assert "DELETE FROM django_migrations WHERE app = 'django_safemigrate'" in err
    assert applied(database) == before


@pytest.mark.once  # nothing in it depends on the Django version
def test_the_documented_recovery_starts_a_new_ledger(database, scenarios):
    env = command_env(database, apps=["basic"], pythonpath=[scenarios])
    run_command(["safemigrate", "basic", "0001"], env, expect=0)
    query(database, "DROP TABLE django_safemigrate_run CASCADE")
    run_command(["safemigrate"], env, expect=2)
    # README, "Lost ledger tables".
    tables = query(
        database, "SELECT tablename FROM pg_tables WHERE tablename LIKE 'django\\_safemigrate\\_%%'"
    )
    functions = query(
        database,
        "SELECT p.oid::regprocedure::text FROM pg_proc p "
        "WHERE p.proname LIKE 'django\\_safemigrate\\_%%'",
    )
    for (table,) in tables:
        query(database, f'DROP TABLE "{table}" CASCADE')
    for (function,) in functions:
        query(database, f"DROP FUNCTION {function}")
    query(database, "DELETE FROM django_migrations WHERE app = 'django_safemigrate'")
    # The high-water mark on django_migrations remembers the ledger that was: a new,
    # empty one is a loss to accept explicitly (recorded with who, where and why).
    lost = run_command(["safemigrate"], env, expect=3)
    assert "The migration ledger has lost records" in lost.err
    run_command(["safemigrate", "--accept-ledger-loss", "ledger tables dropped"], env, expect=0)
    assert query(
        database,
        "SELECT name, outcome FROM django_safemigrate_migrationrecord "
        "WHERE app_label = 'basic' ORDER BY name",
    ) == [("0001_initial", "adopted"), ("0002_item_price", "applied"), ("0003_item_sku", "applied")]


# -- --plan returns the code the run would -----------------------------------------------------


def test_plan_refuses_conflicting_leaves_like_the_run(database, scenarios):
    env = command_env(database, apps=["conflicted"], pythonpath=[scenarios])
    run = run_command(["safemigrate"], env, expect=2)
    plan = run_command(["safemigrate", "--plan"], env, expect=2)
    err = one_paragraph(plan)
    assert "Conflicting migrations detected" in err
    assert "0002_a, 0002_b in conflicted" in err
    assert "Conflicting migrations detected" in run.err
    assert not applied(database, "conflicted")


@pytest.mark.once  # nothing in it depends on the Django version
def test_plan_exits_3_where_the_gate_would_stop_the_run(database, scenarios):
    env = command_env(database, apps=["ph_catalog"], pythonpath=[scenarios])
    run_command(["safemigrate", "ph_catalog", "0002"], env, expect=0)
    # ph_catalog.0003 drops a column: it needs a review it does not have.
    plan = run_command(["safemigrate", "--plan"], env, expect=3)
    assert "The gate would stop this plan" in plan.err
    assert "reviewmigration ph_catalog 0003_remove_product_legacy_code" in plan.err
    run_command(["safemigrate"], env, expect=3)
    # Nothing blocked: 0 from both.
    with fresh_database() as other:
        env = command_env(other, apps=["basic"], pythonpath=[scenarios])
        run_command(["safemigrate", "--plan"], env, expect=0)
