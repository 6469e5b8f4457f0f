"""Tenants of one database share the ledger, and keep apart in it.

A schema-per-tenant database keeps this app's tables once, in ``public``; each tenant's
runner (``search_path`` = the tenant, then ``public``) writes its runs there. What a run
reads back (finished steps, interrupted runs, first deploys, the pre-flight's view of old
transactions) must be its own schema's: another tenant's step record is not a step done
here, another tenant's live run is not a dead one.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import (
    command_env,
    connect,
    copy_scenario,
    fresh_database,
    query,
    run_command,
    start_command,
    wait_for,
)
from tests.test_lock_loss import waiting_at

#: Nothing here depends on the Django version: run once, in CI's first pass.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.once]

SHARED = "django_safemigrate"


@pytest.fixture
def database() -> Iterator[str]:
    with fresh_database("sm_scope") as name:
        yield name


def fleet(database: str, project: Path, apps: list[str], tenants: list[str], **settings):
    """The ledger in ``public``; each tenant a schema with its own ``django_migrations``.

    Returns each tenant's command environment.
    """
    public = command_env(
        database,
        apps=apps,
        pythonpath=[project],
        settings=settings or None,
        extra={"DATABASE_SEARCH_PATH": "public", "SHARED_APPS": SHARED},
    )
    run_command(["safemigrate", SHARED], public, expect=0)
    envs = {}
    for tenant in tenants:
        # As django-tenants does before it migrates a schema: the schema's own
        # django_migrations, so that public's is not the one found on the search path.
        query(
            database,
            f"CREATE SCHEMA {tenant}; CREATE TABLE {tenant}.django_migrations ("
            "id bigserial PRIMARY KEY, app varchar(255) NOT NULL, name varchar(255) NOT NULL, "
            "applied timestamptz NOT NULL)",
        )
        envs[tenant] = {**public, "DATABASE_SEARCH_PATH": f"{tenant},public"}
    return envs


def columns(database: str, schema: str, table: str) -> set[str]:
    rows = query(
        database,
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_schema = %s AND table_name = %s",
        [schema, table],
    )
    return {name for (name,) in rows}


def applied_in(database: str, schema: str, app: str) -> list[str]:
    rows = query(
        database, f"SELECT name FROM {schema}.django_migrations WHERE app = %s ORDER BY id", [app]
    )
    return [name for (name,) in rows]


def test_another_tenants_finished_step_is_not_skipped(database, tmp_path):
    """Tenant one stops after step 1 of a non-atomic migration; tenant two runs it whole."""
    copy_scenario("resumable", tmp_path)
    envs = fleet(database, tmp_path, ["resumable"], ["tenant1", "tenant2"])
    for env in envs.values():
        run_command(["safemigrate", "resumable", "0001"], env, expect=0)
    query(database, "INSERT INTO tenant1.resumable_account (email) VALUES ('a@x'), ('a@x')")
    failed = run_command(["safemigrate"], envs["tenant1"], expect=None)
    assert failed.code == 1, failed.output
    assert "note" in columns(database, "tenant1", "resumable_account")

    second = run_command(["safemigrate", "-v", "2"], envs["tenant2"], expect=0)

    assert "already done, skipped" not in second.out
    assert {"note", "verified"} <= columns(database, "tenant2", "resumable_account")
    assert applied_in(database, "tenant2", "resumable") == ["0001_initial", "0002_unique_email"]
    # Each tenant's runs say which schema they migrated.
    schemas = query(database, "SELECT DISTINCT schema FROM public.django_safemigrate_run")
    assert {s for (s,) in schemas} == {"public", "tenant1", "tenant2"}
    # Tenant one resumes at its own unfinished step once its data is fixed.
    query(
        database,
        "DELETE FROM tenant1.resumable_account "
        "WHERE id = (SELECT max(id) FROM tenant1.resumable_account)",
    )
    resumed = run_command(["safemigrate", "-v", "2"], envs["tenant1"], expect=0)
    assert "already done, skipped" in resumed.out
    assert applied_in(database, "tenant1", "resumable") == ["0001_initial", "0002_unique_email"]


def test_an_old_transaction_in_another_tenant_does_not_hold_up_the_preflight(database, tmp_path):
    copy_scenario("resumable", tmp_path)
    envs = fleet(
        database,
        tmp_path,
        ["resumable"],
        ["tenant1", "tenant2"],
        PREFLIGHT="stop",
        PREFLIGHT_MIN_AGE=0.2,
    )
    for env in envs.values():
        run_command(["safemigrate", "resumable", "0001"], env, expect=0)
    with connect(database) as holder:
        # An old transaction on tenant one's table of the same name.
        holder.execute("BEGIN")
        holder.execute("SELECT count(*) FROM tenant1.resumable_account")
        wait_for(
            lambda: query(
                database,
                "SELECT 1 FROM pg_stat_activity WHERE state = 'idle in transaction' "
                "AND xact_start < now() - interval '0.3 seconds'",
            ),
            10,
        )
        run_command(["safemigrate"], envs["tenant2"], expect=0)
        assert "note" in columns(database, "tenant2", "resumable_account")

        # On the tenant's own table, the same transaction stops the run before it locks.
        stopped = run_command(["safemigrate"], envs["tenant1"], expect=None)
        holder.execute("ROLLBACK")
    assert stopped.code != 0, stopped.output
    assert "old transactions use the tables it locks" in stopped.err
    assert "note" not in columns(database, "tenant1", "resumable_account")


def test_another_tenants_live_run_is_not_marked_interrupted(database, tmp_path):
    copy_scenario("lockloss", tmp_path)
    envs = fleet(database, tmp_path, ["lockloss"], ["tenant1", "tenant2"])
    waiting, ready, go = waiting_at(envs["tenant1"], "0003", tmp_path)
    first = start_command(["safemigrate"], waiting)
    try:
        wait_for(lambda: ready.exists() or first.poll() is not None, timeout=60)
        assert ready.exists(), first.communicate()
        run_command(["safemigrate"], envs["tenant2"], expect=0)
        live = query(
            database,
            "SELECT outcome FROM public.django_safemigrate_run WHERE schema = 'tenant1'",
        )
        assert live == [("running",)]
        go.write_text("go")
        out, err = first.communicate(timeout=60)
    except BaseException:
        first.kill()
        first.communicate()
        raise
    assert first.returncode == 0, f"stdout:\n{out}\nstderr:\n{err}"
    outcomes = query(
        database,
        "SELECT schema, outcome FROM public.django_safemigrate_run "
        "WHERE schema <> 'public' ORDER BY schema",
    )
    assert outcomes == [("tenant1", "applied"), ("tenant2", "applied")]
    # Each tenant's status shows its own runs.
    status = run_command(["safemigrate", "--status"], envs["tenant2"], expect=0)
    assert "tenant2" in status.out
    assert status.out.count("applied") >= 1
    assert "tenant1" not in status.out


def test_a_tenants_interrupted_first_deploy_is_continued(database, tmp_path):
    """Tenant one's first deploy completed; tenant two's was killed half-way. Its rerun
    continues it without reviews, as a new database's first deploy would go."""
    copy_scenario("firstdeploy", tmp_path)
    envs = fleet(database, tmp_path, ["firstdeploy"], ["tenant1", "tenant2"])
    run_command(["safemigrate"], envs["tenant1"], expect=0)
    pause = tmp_path / "pause"
    pause.touch()
    proc = start_command(["safemigrate"], {**envs["tenant2"], "SCENARIO_PAUSE_FILE": str(pause)})
    try:
        wait_for(lambda: Path(f"{pause}.reached").exists() or proc.poll() is not None, 120)
        assert proc.poll() is None, proc.communicate()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
    wait_for(
        lambda: (
            not query(
                database,
                "SELECT 1 FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid() AND backend_type = 'client backend'",
            )
        ),
        30,
    )
    assert "0004_remove_item_legacy" not in applied_in(database, "tenant2", "firstdeploy")

    rerun = run_command(["safemigrate"], envs["tenant2"], expect=0)

    assert "Blocked" not in rerun.output
    assert "0004_remove_item_legacy" in applied_in(database, "tenant2", "firstdeploy")
    last = query(
        database,
        "SELECT outcome, first_deploy FROM public.django_safemigrate_run "
        "WHERE schema = 'tenant2' ORDER BY id DESC LIMIT 1",
    )
    assert last == [("applied", True)]
