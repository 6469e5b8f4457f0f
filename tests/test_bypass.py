"""Bypasses are deliberate and recorded.

Every run that goes without governance (plain ``migrate``, ``--fake``, the older
package's modes) says so on its ledger row, with who and where; the append-only
tables refuse ``TRUNCATE`` as they refuse ``UPDATE`` and ``DELETE``; a ledger that
lost records stops the run until the loss is accepted explicitly. Real processes on
a real PostgreSQL; what happened is read from the ledger, ``django_migrations`` and
the catalogs.
"""

from __future__ import annotations

import getpass
import socket
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.helpers import applied, command_env, connect, copy_scenario, fresh_database, query
from tests.helpers import run_command as run

#: Nothing here depends on the Django version: run once, in CI's first pass.
pytestmark = pytest.mark.once

APP = "governed_shop"
DROP = (APP, "0003_remove_product_legacy_code")
APPEND_ONLY = (
    "django_safemigrate_run",
    "django_safemigrate_migrationrecord",
    "django_safemigrate_steprecord",
    "django_safemigrate_review",
    "django_safemigrate_ledgermark",
    "django_safemigrate_schemamark",
)


@pytest.fixture
def database() -> Iterator[str]:
    with fresh_database("byp") as name:
        yield name


@pytest.fixture
def scenarios(tmp_path: Path) -> Path:
    copy_scenario(APP, tmp_path)
    return tmp_path


def env_for(database: str, scenarios: Path, settings: dict[str, object] | str | None = None):
    return command_env(
        database,
        apps=[APP],
        pythonpath=[scenarios],
        settings=settings,
        module="tests.review_site_settings",  # the scenario's history starts from the admin's
    )


def runs(database: str) -> list[tuple[str, str, str, str, str]]:
    """(command, argv, OS user, host, ungoverned) of every run, oldest first."""
    return query(
        database,
        "SELECT command, argv, \"user\", host, coalesce(ungoverned, '') "
        "FROM django_safemigrate_run ORDER BY id",
    )


def counts(database: str) -> tuple[int, int]:
    (row,) = query(
        database,
        "SELECT (SELECT count(*) FROM django_safemigrate_run), "
        "(SELECT count(*) FROM django_safemigrate_migrationrecord)",
    )
    return row[0], row[1]


def started(database: str, env) -> None:
    """Django's apps and the scenario's first migration (a new database: not gated)."""
    run(["safemigrate", APP, "0001"], env, expect=0)


# -- every run without governance is recorded -------------------------------------------------


def test_every_run_without_governance_says_so_with_who_and_where(database, scenarios):
    env = env_for(database, scenarios)
    started(database, env)
    run(["safemigrate", APP, "0002"], env, expect=0)
    blocked = run(["safemigrate", APP], env, expect=3)
    assert "needs a review (destructive)" in blocked.err
    run(["migrate", APP, "--fake"], env, expect=0)
    run(["migrate", APP, "0002", "--fake"], env, expect=0)
    run(["migrate", APP], env, expect=0)
    assert DROP in applied(database)

    plain = "plain migrate: no review or phase gate (safemigrate has them)"
    fake = "--fake: migrations marked applied without running them"
    rows = runs(database)
    assert [(r[0], r[4]) for r in rows] == [
        (
            "safemigrate",
            "nothing is applied on this database yet, and a new database is not gated "
            "(GOVERN_FRESH_DATABASE)",
        ),
        ("safemigrate", ""),  # gated
        ("safemigrate", ""),  # gated: the gate blocked it
        ("migrate", f"{plain}; {fake}"),
        ("migrate", f"{plain}; {fake}"),
        ("migrate", plain),
    ]
    assert {(r[2], r[3]) for r in rows} == {(getpass.getuser(), socket.gethostname())}
    assert rows[3][1].endswith(f"migrate {APP} --fake")
    assert rows[5][1].endswith(f"migrate {APP}")


def test_disabled_and_the_plan_say_what_runs_without_review(database, scenarios):
    env = env_for(database, scenarios, "disabled")
    started(database, env)
    plan = run(["safemigrate", "--plan"], env, expect=0)
    assert (
        f"Without governance: this run would apply {APP}.0002_product_legacy_code, "
        f"{APP}.0003_remove_product_legacy_code without review because SAFEMIGRATE = "
        "'disabled' (the older package's mode): no review or phase gate." in plan.out
    )
    fake = run(["safemigrate", "--plan", "--fake"], env, expect=0)
    assert (
        f"--fake: this run would mark {APP}.0002_product_legacy_code, "
        f"{APP}.0003_remove_product_legacy_code applied without running them." in fake.out
    )
    assert "(safemigrate.W003) SAFEMIGRATE = 'disabled'" in plan.err
    assert "the phase gate: safemigrate applies every migration" in plan.err

    run(["safemigrate"], env, expect=0)
    assert DROP in applied(database)
    disabled = "SAFEMIGRATE = 'disabled' (the older package's mode): no review or phase gate"
    assert runs(database)[-1][4] == disabled
    run(["safemigrate", APP, "0001", "--fake"], env, expect=0)
    assert DROP not in applied(database)
    assert runs(database)[-1][4] == (
        f"--fake: migrations marked applied without running them; {disabled}"
    )


def test_strict_plan_names_the_destructive_migration_it_applies_without_review(database, scenarios):
    env = env_for(database, scenarios, "strict")
    started(database, env)
    plan = run(["safemigrate", "--plan"], env, expect=0)
    assert (
        f"Without review: this run would apply {DROP[0]}.{DROP[1]} (destructive) without "
        "review because SAFEMIGRATE = 'strict' selects the older package's mode, which needs "
        "no reviews." in plan.out
    )
    governed = env_for(database, scenarios)
    plan = run(["safemigrate", "--plan"], governed, expect=None)
    assert "destructive, post_deploy, review pending, blocked" in plan.out
    assert "Without review" not in plan.out


# -- the append-only tables -----------------------------------------------------------------


def test_truncate_is_refused_like_update_and_delete(database, scenarios):
    env = env_for(database, scenarios)
    started(database, env)
    run(["safemigrate", APP, "0002"], env, expect=0)  # steps (a concurrent index)
    run(["safemigrate", APP], env, expect=3)  # a governed migration
    run(
        [
            "shell",
            "-c",
            "from django.contrib.auth.models import Permission, User\n"
            "u = User.objects.create_user('rita')\n"
            "u.user_permissions.add(Permission.objects.get(codename='decide_migration'))",
        ],
        env,
        expect=0,
    )
    reject = ["reviewmigration", APP, "0003", "--reject", "--note", "not yet", "--as", "rita"]
    run(reject, env, expect=0)
    before = {t: query(database, f"SELECT count(*) FROM {t}")[0][0] for t in APPEND_ONLY}
    assert all(before.values()), before

    refused = (psycopg.errors.IntegrityConstraintViolation, psycopg.errors.RaiseException)
    # The run table alone is refused by its foreign keys first; CASCADE reaches the trigger.
    statements = [f"TRUNCATE {table}" for table in APPEND_ONLY if table != APPEND_ONLY[0]] + [
        # CASCADE empties the tables that reference the one named: their triggers fire too.
        "TRUNCATE django_safemigrate_governedmigration CASCADE",
        "TRUNCATE django_safemigrate_run CASCADE",
        "TRUNCATE django_safemigrate_run, django_safemigrate_migrationrecord, "
        "django_safemigrate_steprecord, django_safemigrate_archive RESTART IDENTITY",
        "UPDATE django_safemigrate_migrationrecord SET checksum = 'sha256:x'",
        "UPDATE django_safemigrate_steprecord SET checksum = 'sha256:x'",
        "DELETE FROM django_safemigrate_migrationrecord",
        "DELETE FROM django_safemigrate_steprecord",
        "DELETE FROM django_safemigrate_run WHERE id NOT IN "
        "(SELECT run_id FROM django_safemigrate_migrationrecord "
        " UNION SELECT run_id FROM django_safemigrate_steprecord)",
        "DELETE FROM django_safemigrate_ledgermark",
        "DELETE FROM django_safemigrate_schemamark",
        "UPDATE django_safemigrate_review SET note = 'changed'",
    ]
    for statement in statements:
        with connect(database) as conn, pytest.raises(refused, match="append-only") as caught:
            conn.execute(statement)
        assert "append-only" in str(caught.value), statement
    after = {t: query(database, f"SELECT count(*) FROM {t}")[0][0] for t in APPEND_ONLY}
    assert after == before
    # The triggers, as the catalog has them: a statement trigger BEFORE TRUNCATE each.
    rows = query(
        database,
        "SELECT c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
        "WHERE NOT t.tgisinternal AND (t.tgtype & 32) <> 0 AND (t.tgtype & 1) = 0 "
        "AND (t.tgtype & 2) <> 0",
    )
    assert sorted(r[0] for r in rows) == sorted([*APPEND_ONLY, "django_safemigrate_archive"])


def test_flush_keeps_the_governance_tables(database, scenarios):
    """Django's flush (and the test framework's, after each TransactionTestCase) empties the
    data and leaves this app's tables, as it leaves django_migrations."""
    env = env_for(database, scenarios)
    started(database, env)
    user = "from django.contrib.auth.models import User; User.objects.create()"
    run(["shell", "-c", user], env, expect=0)
    ledger = counts(database)
    run(["flush", "--noinput"], env, expect=0)
    assert query(database, "SELECT count(*) FROM auth_user") == [(0,)]
    assert counts(database) == ledger
    run(["safemigrate", APP, "0002"], env, expect=0)


# -- a ledger that lost records ---------------------------------------------------------------


def edit_applied_migration(scenarios: Path) -> None:
    """An edit the checksum check must catch: it would be adopted with a lost ledger."""
    path = scenarios / APP / "migrations" / "0002_product_legacy_code.py"
    path.write_text(path.read_text().replace("max_length=20", "max_length=30"))


def test_a_ledger_whose_rows_were_deleted_stops_the_run_until_the_loss_is_accepted(
    database, scenarios
):
    env = env_for(database, scenarios)
    started(database, env)
    run(["safemigrate", APP, "0002"], env, expect=0)
    runs_before, records_before = counts(database)
    with connect(database) as conn:
        # The triggers refuse this; a superuser can switch them off for the session.
        conn.execute("SET session_replication_role = replica")
        conn.execute("DELETE FROM django_safemigrate_steprecord")
        conn.execute("DELETE FROM django_safemigrate_migrationrecord")
        conn.execute("DELETE FROM django_safemigrate_run")
        # And the mirror on django_migrations: the mark's own row is enough to notice.
        conn.execute("COMMENT ON TABLE django_migrations IS NULL")
    edit_applied_migration(scenarios)
    before = applied(database)

    for command in (["safemigrate"], ["migrate"], ["safemigrate", APP, "0002"]):
        result = run(command, env, expect=3)
        assert "The migration ledger has lost records: it holds 0 runs, 0 migration records" in (
            result.err
        )
        assert f"but held {runs_before} runs, {records_before} migration records" in result.err
        assert "--accept-ledger-loss" in result.err
        assert "Traceback" not in result.err
        assert applied(database) == before
        assert counts(database) == (0, 0), "a refused run writes nothing to the ledger"

    # Accepting the loss is deliberate, needs a reason, and is recorded.
    run(["safemigrate", "--accept-ledger-loss", "  "], env, expect=2)
    accepted = run(
        ["safemigrate", APP, "0002", "--accept-ledger-loss", "restored from backup 12"],
        env,
        expect=0,
    )
    assert "Traceback" not in accepted.err
    ((command, argv, user, host, ungoverned),) = runs(database)
    assert (user, host) == (getpass.getuser(), socket.gethostname())
    assert "--accept-ledger-loss" in argv
    assert ungoverned.startswith("accepted the loss of ledger records (it held 0 runs")
    assert ungoverned.endswith("adopted again as the baseline: restored from backup 12")
    # The history (the edited file included) is the new baseline; the next run is clean,
    # and accepting a loss that did not happen is refused.
    run(["safemigrate", APP, "0002"], env, expect=0)
    result = run(["safemigrate", "--accept-ledger-loss", "again"], env, expect=2)
    assert "the ledger has not lost records" in result.err


def test_a_ledger_dropped_and_created_again_is_noticed(database, scenarios):
    """All of this app's tables emptied with the triggers off (the mark's row included),
    or dropped through its own migrations and created again: the comment on
    django_migrations still holds the mark."""
    env = env_for(database, scenarios)
    started(database, env)
    run(["safemigrate", APP, "0002"], env, expect=0)
    (comment,) = query(database, "SELECT obj_description('django_migrations'::regclass)")[0]
    assert comment.startswith("django_safemigrate ledger: runs=2 records=")
    edit_applied_migration(scenarios)

    run(["migrate", "django_safemigrate", "zero"], env, expect=0)
    assert query(database, "SELECT to_regclass('django_safemigrate_run')") == [(None,)]
    result = run(["safemigrate"], env, expect=3)
    assert "The migration ledger has lost records: it holds 0 runs" in result.err
    assert "but held 2 runs" in result.err  # the run that dropped them could not count
    assert DROP not in applied(database)

    run(["safemigrate", APP, "0002", "--accept-ledger-loss", "dropped by hand"], env, expect=0)
    with connect(database) as conn:
        conn.execute("SET session_replication_role = replica")
        conn.execute(
            "TRUNCATE django_safemigrate_run, django_safemigrate_migrationrecord, "
            "django_safemigrate_steprecord, django_safemigrate_archive, "
            "django_safemigrate_ledgermark, django_safemigrate_schemamark"
        )
    result = run(["safemigrate"], env, expect=3)
    assert "The migration ledger has lost records: it holds 0 runs" in result.err
    assert DROP not in applied(database)


def test_a_comment_of_the_project_on_django_migrations_is_kept(database, scenarios):
    env = env_for(database, scenarios)
    started(database, env)
    with connect(database) as conn:
        conn.execute("COMMENT ON TABLE django_migrations IS 'owned by the platform team'")
    run(["safemigrate", APP, "0002"], env, expect=0)
    (comment,) = query(database, "SELECT obj_description('django_migrations'::regclass)")[0]
    first, second = comment.split("\n")
    assert first == "owned by the platform team"
    assert second.startswith("django_safemigrate ledger: runs=2 ")


def test_the_mark_of_the_whole_ledger_from_an_earlier_release_still_guards_a_schema(
    database, scenarios
):
    """Before migration 0011 the mark counted the whole ledger (one ledgermark row, a
    comment line without a schema). A schema with no mark of its own is checked against it
    until its first run writes one; after that, the whole ledger's mark (which a runner of
    the earlier release still updates during a rolling upgrade) no longer counts."""
    env = env_for(database, scenarios)
    started(database, env)
    run(["safemigrate", APP, "0002"], env, expect=0)
    (comment,) = query(database, "SELECT obj_description('django_migrations'::regclass)")[0]
    assert comment.endswith(" schema=public"), comment
    (mark,) = query(database, "SELECT schema, runs FROM django_safemigrate_schemamark")
    assert mark == ("public", 2)

    def as_the_earlier_release_left_it(whole: int) -> None:
        # No mark of the schema's own; the whole ledger's, as the earlier release wrote it.
        with connect(database) as conn:
            conn.execute("SET session_replication_role = replica")
            conn.execute("DELETE FROM django_safemigrate_schemamark")
            conn.execute(f"UPDATE django_safemigrate_ledgermark SET runs = {whole}")
            conn.execute(
                "COMMENT ON TABLE django_migrations IS "
                f"'django_safemigrate ledger: runs={whole} records=0 steps=0'"
            )

    as_the_earlier_release_left_it(whole=50)
    stopped = run(["safemigrate"], env, expect=3)
    assert "The migration ledger has lost records: it holds 2 runs" in stopped.err
    assert "but held 50 runs" in stopped.err
    assert DROP not in applied(database)

    as_the_earlier_release_left_it(whole=1)
    run(["safemigrate", APP, "0002"], env, expect=0)
    (comment,) = query(database, "SELECT obj_description('django_migrations'::regclass)")[0]
    # The earlier release's line is replaced by the schema's own.
    assert comment.startswith("django_safemigrate ledger: runs=3 records="), comment
    assert comment.endswith(" schema=public"), comment
    assert "\n" not in comment, comment
    assert query(database, "SELECT schema, runs FROM django_safemigrate_schemamark") == [
        ("public", 3)
    ]
    # A runner of the earlier release during a rolling upgrade: it raises the whole
    # ledger's mark; the schema's own mark is what is compared now.
    with connect(database) as conn:
        conn.execute("UPDATE django_safemigrate_ledgermark SET runs = 1000")
    run(["safemigrate", APP, "0002"], env, expect=0)


# -- decisions from the command line ---------------------------------------------------------

USERS = """
from django.contrib.auth.models import Permission, User
decide = Permission.objects.get(codename="decide_migration")
User.objects.create_user("rita").user_permissions.add(decide)
User.objects.create_user("ivan", is_active=False).user_permissions.add(decide)
"""


def decisions(database: str) -> list[tuple[str, str, str, str, str]]:
    return query(
        database,
        "SELECT decision, reviewer_name, source, os_user, host FROM django_safemigrate_review "
        "ORDER BY id",
    )


def test_command_line_decisions_say_where_they_came_from_and_can_be_kept_to_the_admin(
    database, scenarios
):
    env = env_for(database, scenarios)
    started(database, env)
    run(["safemigrate", APP, "0002"], env, expect=0)
    run(["shell", "-c", USERS], env, expect=0)

    def review(decision: str, user: str, env, expect: int):
        args = ["reviewmigration", APP, "0003", f"--{decision}", "--note", "ok", "--as", user]
        return run(args, env, expect=expect)

    me, here = getpass.getuser(), socket.gethostname()
    result = review("reject", "rita", env, expect=0)
    assert f"as rita (recorded from {me}@{here})" in result.out
    assert decisions(database) == [("reject", "rita", "command", me, here)]
    # --as names an active user holding the permission, nothing less.
    result = review("approve", "ivan", env, expect=2)
    assert "ivan may not approve or reject migrations" in result.err
    result = review("approve", "nobody", env, expect=2)
    assert "There is no user 'nobody'" in result.err

    reject_only = env_for(database, scenarios, {"COMMAND_LINE_REVIEWS": "reject_only"})
    result = review("approve", "rita", reject_only, expect=2)
    assert "This project takes no approvals from the command line" in result.err
    assert "Approve or reject the migration in the Django admin" in result.err
    review("reject", "rita", reject_only, expect=0)

    off = env_for(database, scenarios, {"COMMAND_LINE_REVIEWS": "off"})
    result = review("reject", "rita", off, expect=2)
    assert "This project takes no decisions from the command line" in result.err
    assert [d[0] for d in decisions(database)] == ["reject", "reject"]

    wrong = env_for(database, scenarios, {"COMMAND_LINE_REVIEWS": "admins"})
    result = run(["check"], wrong, expect=1)
    assert "(safemigrate.E019) SAFEMIGRATE['COMMAND_LINE_REVIEWS'] is 'admins'" in result.err
