"""The drop-in successor of aspiredu's django-safemigrate (5.x), end to end.

Projects that used the older package keep their migration files (``safe =
Safe.before_deploy()`` and friends) and their ``SAFEMIGRATE = "strict" |
"nonstrict" | "disabled"`` setting. Each test builds a graph of such migrations
in a copy of ``tests/scenarios/lg_shop`` and ``lg_pantry`` (written at runtime,
one plain ``RunSQL`` table per migration), runs ``manage.py safemigrate`` /
``migrate`` in real processes on a real PostgreSQL, and reads what happened from
``django_migrations`` and ``django_safemigrate_governedmigration``.

A database with nothing applied is not governed, so every test starts from a copy
(``CREATE DATABASE ... TEMPLATE``) of one database on which Django's own apps and
each scenario app's ``0001_initial`` were applied once for the whole module.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from tests.helpers import (
    applied,
    command_env,
    copy_scenario,
    fresh_database,
    query,
    run_command,
    server_url,
)

#: Nothing here depends on the Django version: run once, in CI's first pass.
pytestmark = pytest.mark.once

APPS = ("lg_shop", "lg_pantry")
GOVERNED = "django_safemigrate_governedmigration"


# -- databases and scenarios -----------------------------------------------------------------


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A database with auth, contenttypes and each scenario app's 0001 applied."""
    scenarios = tmp_path_factory.mktemp("lg_template")
    for app in APPS:
        copy_scenario(app, scenarios)
    with fresh_database("lgt") as name:
        # Nothing is applied yet, so nothing is gated: everything runs.
        run_command(["safemigrate"], command_env(name, apps=APPS, pythonpath=[scenarios]), expect=0)
        yield name


@contextmanager
def _copy_of(template: str) -> Iterator[str]:
    name = f"lg_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(make_conninfo(server_url()), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    try:
        yield name
    finally:
        with psycopg.connect(make_conninfo(server_url()), autocommit=True) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                [name],
            )
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')


@pytest.fixture
def database(template: str) -> Iterator[str]:
    with _copy_of(template) as name:
        yield name


@pytest.fixture
def scenarios(tmp_path: Path) -> Path:
    for app in APPS:
        copy_scenario(app, tmp_path)
    return tmp_path


def env_for(database: str, scenarios: Path, mode: str | None):
    """Settings with ``SAFEMIGRATE = mode`` (``None``: the setting is absent)."""
    return command_env(database, apps=APPS, pythonpath=[scenarios], settings=mode)


def write_migration(
    scenarios: Path,
    app: str,
    name: str,
    *,
    safe: str | None,
    dependencies: Sequence[tuple[str, str]] = (),
    run_before: Sequence[tuple[str, str]] = (),
) -> None:
    """``app/migrations/name.py`` creating one table; ``safe`` is the marker's source text."""
    deps = list(dependencies) or [(app, "0001_initial")]
    table = f"{app}_t{name[:4]}"
    lines = [
        "from datetime import timedelta  # noqa: F401",
        "",
        "from django.db import migrations",
        "",
        "from django_safemigrate import Safe  # noqa: F401",
        "",
        "",
        "class Migration(migrations.Migration):",
        f"    dependencies = {deps!r}",
    ]
    if run_before:
        lines.append(f"    run_before = {list(run_before)!r}")
    if safe is not None:
        lines.append(f"    safe = {safe}")
    lines.append(
        f"    operations = [migrations.RunSQL('CREATE TABLE {table} (id int)', "
        f"'DROP TABLE {table}')]"
    )
    (scenarios / app / "migrations" / f"{name}.py").write_text("\n".join(lines) + "\n")


def ours(database: str) -> set[tuple[str, str]]:
    """The scenario apps' applied migrations."""
    return {key for key in applied(database) if key[0] in APPS}


def detected(database: str) -> dict[tuple[str, str], datetime | None]:
    rows = query(database, f"SELECT app_label, name, detected FROM {GOVERNED}")
    return {(app, name): when for app, name, when in rows}


BASE = {("lg_shop", "0001_initial"), ("lg_pantry", "0001_initial")}


# -- what runs before the deploy --------------------------------------------------------------


def test_markers_decide_what_safemigrate_runs_and_migrate_runs_the_rest(database, scenarios):
    """Uncalled and called markers, unmarked = always, consecutive afters, always after an after.

    The uncalled forms (``safe = Safe.before_deploy``) mean what the calls mean.
    """
    write_migration(scenarios, "lg_shop", "0002_before", safe="Safe.before_deploy")
    write_migration(
        scenarios, "lg_shop", "0003_always", safe="Safe.always",
        dependencies=[("lg_shop", "0002_before")],
    )  # fmt: skip
    write_migration(
        scenarios, "lg_shop", "0004_after", safe="Safe.after_deploy",
        dependencies=[("lg_shop", "0003_always")],
    )  # fmt: skip
    write_migration(
        scenarios, "lg_shop", "0005_after", safe="Safe.after_deploy()",
        dependencies=[("lg_shop", "0004_after")],
    )  # fmt: skip
    write_migration(
        scenarios, "lg_shop", "0006_always", safe="Safe.always()",
        dependencies=[("lg_shop", "0005_after")],
    )  # fmt: skip
    write_migration(scenarios, "lg_pantry", "0002_unmarked", safe=None)
    write_migration(
        scenarios, "lg_pantry", "0003_unmarked", safe=None,
        dependencies=[("lg_pantry", "0002_unmarked"), ("lg_shop", "0004_after")],
    )  # fmt: skip
    env = env_for(database, scenarios, "strict")

    result = run_command(["safemigrate"], env, expect=0)
    ran = {
        ("lg_shop", "0002_before"),
        ("lg_shop", "0003_always"),  # an always before an after runs
        ("lg_pantry", "0002_unmarked"),  # no marker: always
    }
    held = {
        ("lg_shop", "0004_after"): "deferred",  # protected (uncalled after_deploy)
        ("lg_shop", "0005_after"): "deferred",  # consecutive afters: no error
        ("lg_shop", "0006_always"): "deferred",  # an always after an after: delayed
        ("lg_pantry", "0003_unmarked"): "deferred",  # unmarked after an after: delayed
    }
    assert ours(database) == BASE | ran
    for (app, name), verdict in held.items():
        assert f"{app}.{name} ({verdict})" in result.err
    assert "depends on lg_shop.0005_after" in result.err
    # The plan went ahead: the after_deploy migrations are detected now.
    seen = detected(database)
    assert seen[("lg_shop", "0004_after")] is not None
    assert seen[("lg_shop", "0005_after")] is not None

    # After the deploy, plain migrate runs the rest, after_deploy included.
    run_command(["migrate"], env, expect=0)
    assert ours(database) == BASE | ran | set(held)


def build_blocked_graph(scenarios: Path) -> None:
    """lg_shop: 0002 after_deploy <- 0003 always <- 0004 before_deploy; lg_pantry: 0002
    before_deploy (free), 0003 unmarked behind lg_shop.0004."""
    write_migration(scenarios, "lg_shop", "0002_after", safe="Safe.after_deploy()")
    write_migration(
        scenarios, "lg_shop", "0003_always", safe="Safe.always()",
        dependencies=[("lg_shop", "0002_after")],
    )  # fmt: skip
    write_migration(
        scenarios, "lg_shop", "0004_before", safe="Safe.before_deploy()",
        dependencies=[("lg_shop", "0003_always")],
    )  # fmt: skip
    write_migration(scenarios, "lg_pantry", "0002_before", safe="Safe.before_deploy()")
    write_migration(
        scenarios, "lg_pantry", "0003_unmarked", safe=None,
        dependencies=[("lg_pantry", "0002_before"), ("lg_shop", "0004_before")],
    )  # fmt: skip


ALL_BLOCKED_GRAPH = {
    ("lg_shop", "0002_after"),
    ("lg_shop", "0003_always"),
    ("lg_shop", "0004_before"),
    ("lg_pantry", "0002_before"),
    ("lg_pantry", "0003_unmarked"),
}


def test_strict_stops_nonstrict_applies_what_it_can_disabled_applies_everything(
    database, scenarios
):
    """A before_deploy behind an after_deploy (through an always) is blocked.

    The same deploy under each mode in turn: strict, an error, nothing runs and nothing
    is detected; nonstrict, what is not held runs (exit 0) and the plan's after_deploy
    is detected; disabled, everything runs, like migrate.
    """
    build_blocked_graph(scenarios)
    result = run_command(["safemigrate"], env_for(database, scenarios, "strict"), expect=3)
    assert ours(database) == BASE, "nothing runs when a migration is blocked"
    assert "nothing was applied" in result.err
    assert "lg_shop.0004_before is a pre-deploy migration but depends on " in result.err
    assert "lg_shop.0003_always" in result.err
    assert "waiting for the post-deploy phase: lg_shop.0002_after" in result.err
    assert not any(detected(database).values()), "a blocked plan detects nothing"

    result = run_command(["safemigrate"], env_for(database, scenarios, "nonstrict"), expect=0)
    assert ours(database) == BASE | {("lg_pantry", "0002_before")}
    assert "lg_shop.0002_after (deferred)" in result.err  # protected
    assert "lg_shop.0003_always (deferred)" in result.err  # delayed
    assert "lg_shop.0004_before (blocked)" in result.err
    assert "lg_pantry.0003_unmarked (blocked)" in result.err
    assert detected(database)[("lg_shop", "0002_after")] is not None

    run_command(["safemigrate"], env_for(database, scenarios, "disabled"), expect=0)
    assert ours(database) == BASE | ALL_BLOCKED_GRAPH


def test_absent_setting_with_markers_runs_the_pre_deploy_phase_and_run_before_counts(
    database, scenarios
):
    """No SAFEMIGRATE: ``safemigrate`` runs the pre-deploy phase, as the older package's did
    (with reviews). An after_deploy with ``run_before`` a before_deploy of another app
    blocks that one like a dependency."""
    write_migration(
        scenarios, "lg_shop", "0002_after", safe="Safe.after_deploy()",
        run_before=[("lg_pantry", "0002_before")],
    )  # fmt: skip
    write_migration(scenarios, "lg_pantry", "0002_before", safe="Safe.before_deploy()")
    result = run_command(["safemigrate"], env_for(database, scenarios, None), expect=3)
    assert ours(database) == BASE
    assert "lg_pantry.0002_before is a pre-deploy migration but depends on lg_shop.0002_after" in (
        result.err
    )
    assert not any(detected(database).values())


# -- delays and detection -------------------------------------------------------------------


def set_detected(database: str, app: str, name: str, when: datetime) -> None:
    query(
        database,
        f"UPDATE {GOVERNED} SET detected = %s WHERE app_label = %s AND name = %s",
        [when, app, name],
    )


def test_delayed_after_deploy_runs_once_its_delay_has_passed_and_fake_detects_nothing(
    database, scenarios
):
    """``Safe.after_deploy(delay=...)`` runs in safemigrate once first detected at least
    ``delay`` ago; never on first sight; a passed delay still waits behind a held one."""
    write_migration(scenarios, "lg_shop", "0002_before", safe="Safe.before_deploy()")
    write_migration(
        scenarios, "lg_shop", "0003_soon", safe="Safe.after_deploy(delay=timedelta(hours=1))",
        dependencies=[("lg_shop", "0002_before")],
    )  # fmt: skip
    write_migration(
        scenarios, "lg_shop", "0004_later", safe="Safe.after_deploy(delay=timedelta(days=2))",
        dependencies=[("lg_shop", "0003_soon")],
    )  # fmt: skip
    write_migration(
        scenarios, "lg_shop", "0005_always", safe="Safe.always()",
        dependencies=[("lg_shop", "0004_later")],
    )  # fmt: skip
    # A delay already over when first seen: still not on first sight.
    write_migration(
        scenarios, "lg_pantry", "0002_negative",
        safe="Safe.after_deploy(delay=timedelta(hours=-1))",
    )  # fmt: skip
    # Its own delay will be over, but it depends on lg_shop.0004_later.
    write_migration(
        scenarios, "lg_pantry", "0003_behind", safe="Safe.after_deploy(delay=timedelta(hours=1))",
        dependencies=[("lg_pantry", "0002_negative"), ("lg_shop", "0004_later")],
    )  # fmt: skip
    env = env_for(database, scenarios, "strict")
    delayed = [
        ("lg_shop", "0003_soon"),
        ("lg_shop", "0004_later"),
        ("lg_pantry", "0002_negative"),
        ("lg_pantry", "0003_behind"),
    ]

    # --fake records what it fakes, but detects nothing.
    run_command(["safemigrate", "--fake"], env, expect=0)
    assert ours(database) == BASE | {("lg_shop", "0002_before")}
    assert not any(detected(database).values())

    # First real sight: detected now, but none of them runs (not even the negative delay,
    # which would have run here had --fake detected it).
    started = datetime.now(UTC)
    result = run_command(["safemigrate"], env, expect=0)
    assert ours(database) == BASE | {("lg_shop", "0002_before")}
    seen = detected(database)
    for key in delayed:
        assert seen[key] is not None
        assert seen[key] >= started - timedelta(seconds=5)
        assert f"{'.'.join(key)} (deferred)" in result.err
    assert "lg_shop.0005_always (deferred)" in result.err

    # A day later (set in the database rather than waited for).
    day_ago = datetime.now(UTC) - timedelta(days=1)
    for app, name in [("lg_shop", "0003_soon"), ("lg_shop", "0004_later")]:
        set_detected(database, app, name, day_ago)
    set_detected(database, "lg_pantry", "0003_behind", day_ago)
    result = run_command(["safemigrate"], env, expect=0)
    assert ours(database) == BASE | {
        ("lg_shop", "0002_before"),
        ("lg_shop", "0003_soon"),  # 1 hour passed
        ("lg_pantry", "0002_negative"),  # seen, and its delay is over
    }
    # The first detection is kept, and the message says when the next one can run.
    later = detected(database)[("lg_shop", "0004_later")]
    assert abs(later - day_ago) < timedelta(milliseconds=1)
    when = (later + timedelta(days=2)).astimezone(UTC).isoformat(timespec="seconds")
    assert f"lg_shop.0004_later (deferred): is post-deploy; its delay ends at {when}" in result.err
    assert "lg_shop.0005_always (deferred): depends on lg_shop.0004_later" in result.err
    assert "lg_pantry.0003_behind (deferred): depends on lg_shop.0004_later" in result.err


# -- refused -------------------------------------------------------------------------------


def test_invalid_safe_values_and_invalid_mode_stop_before_anything_runs(database, scenarios):
    write_migration(scenarios, "lg_pantry", "0002_fine", safe="Safe.before_deploy()")
    bad = scenarios / "lg_shop" / "migrations" / "0002_bad.py"
    env = env_for(database, scenarios, "strict")
    for value in ("'before_deploy'", "False"):
        write_migration(scenarios, "lg_shop", "0002_bad", safe=value)
        result = run_command(["safemigrate"], env, expect=2)
        assert "declare their phase wrongly (invalid safe properties): lg_shop.0002_bad:" in (
            result.err
        )
        assert f"safe = {value}" in result.err
        assert "Nothing was applied" in result.err
        assert ours(database) == BASE

    bad.unlink()
    result = run_command(["safemigrate"], env_for(database, scenarios, "lenient"), expect=2)
    assert "SAFEMIGRATE is the string 'lenient'" in result.err
    assert "'strict', 'nonstrict', 'disabled'" in result.err
    assert ours(database) == BASE


def test_backwards_is_refused_in_strict_and_nonstrict_and_allowed_when_disabled(
    database, scenarios
):
    for mode in ("strict", "nonstrict"):
        result = run_command(
            ["safemigrate", "lg_shop", "zero"], env_for(database, scenarios, mode), expect=2
        )
        assert f"safemigrate does not unapply migrations in the older package's '{mode}'" in (
            result.err
        )
        assert ours(database) == BASE
    env = env_for(database, scenarios, "disabled")
    run_command(["safemigrate", "lg_shop", "zero"], env, expect=0)
    assert ours(database) == {("lg_pantry", "0001_initial")}
    assert query(database, "SELECT to_regclass('lg_shop_base')") == [(None,)]


# -- deviations from the older package ------------------------------------------------------


def test_every_migration_with_an_invalid_safe_value_is_named(database, scenarios):
    write_migration(scenarios, "lg_shop", "0002_bad", safe="'after_deploy'")
    write_migration(scenarios, "lg_pantry", "0002_bad", safe="True")
    result = run_command(["safemigrate"], env_for(database, scenarios, "strict"), expect=2)
    assert "lg_shop.0002_bad" in result.err
    assert "lg_pantry.0002_bad" in result.err
    assert ours(database) == BASE


def test_safe_none_is_an_invalid_safe_value(database, scenarios):
    write_migration(scenarios, "lg_shop", "0002_none", safe="None")
    result = run_command(["safemigrate"], env_for(database, scenarios, "strict"), expect=2)
    assert "lg_shop.0002_none" in result.err
    assert ours(database) == BASE


def test_disabled_runs_everything_like_migrate_even_with_an_invalid_safe_value(database, scenarios):
    write_migration(scenarios, "lg_shop", "0002_bad", safe="'after_deploy'")
    run_command(["safemigrate"], env_for(database, scenarios, "disabled"), expect=0)
    assert ours(database) == BASE | {("lg_shop", "0002_bad")}


def write_drop(scenarios: Path, safe: str | None) -> None:
    """lg_shop.0002_drop: a destructive migration (DROP TABLE), with ``safe`` as its marker."""
    marker = f"    safe = {safe}\n" if safe else ""
    (scenarios / "lg_shop" / "migrations" / "0002_drop.py").write_text(
        "from django.db import migrations\n\n"
        "from django_safemigrate import Safe  # noqa: F401\n\n\n"
        "class Migration(migrations.Migration):\n"
        "    dependencies = [('lg_shop', '0001_initial')]\n"
        f"{marker}"
        "    operations = [migrations.RunSQL('DROP TABLE lg_shop_base', "
        "'CREATE TABLE lg_shop_base (id bigint PRIMARY KEY)')]\n"
    )


def test_a_marker_never_turns_reviews_off(database, scenarios):
    """No SAFEMIGRATE, and the destructive migration itself says ``Safe.before_deploy()``:
    the marker is its phase, and it still needs a review; a marker elsewhere in the
    project neither. Only the explicit string setting selects the older package's mode,
    with its warning, and then it runs as it did."""
    write_drop(scenarios, "Safe.before_deploy()")
    write_migration(scenarios, "lg_pantry", "0002_after", safe="Safe.after_deploy()")
    env = env_for(database, scenarios, None)

    # --plan exits with the code the run would: 3, blocked.
    plan = run_command(["safemigrate", "--plan"], env, expect=3)
    assert "lg_shop.0002_drop: destructive, pre_deploy, review pending, blocked" in plan.out
    assert "runs the pre-deploy phase by default, with reviews" in plan.out
    result = run_command(["safemigrate"], env, expect=3)
    assert "lg_shop.0002_drop needs a review (destructive)" in result.err
    assert "safemigrate.W003" not in result.err
    assert ours(database) == BASE

    # Unmarked, with markers elsewhere: inferred post-deploy, and in that phase, the same.
    write_drop(scenarios, None)
    result = run_command(["safemigrate", "--phase", "post"], env, expect=3)
    assert "lg_shop.0002_drop needs a review (destructive)" in result.err
    assert ours(database) == BASE

    # The older package's users with the explicit setting keep what they had, warned.
    result = run_command(["safemigrate"], env_for(database, scenarios, "strict"), expect=0)
    assert "(safemigrate.W003) SAFEMIGRATE = 'strict' selects the older" in result.err
    assert "reviews: destructive migrations are applied by safemigrate without an approval" in (
        result.err
    )
    assert ours(database) == BASE | {("lg_shop", "0002_drop")}
    (ungoverned,) = query(
        database,
        "SELECT ungoverned FROM django_safemigrate_run WHERE command = 'safemigrate' "
        "ORDER BY id DESC LIMIT 1",
    )[0]
    assert ungoverned == (
        "no reviews: SAFEMIGRATE = 'strict' selects the older package's mode, which needs "
        "no reviews"
    )
