"""Governance end to end: the gate in ``safemigrate``, reviews from the terminal, phases.

Real processes on a real database; what happened is read from ``django_migrations``
and the catalogs.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from tests.helpers import applied, command_env, copy_scenario, fresh_database, query, run_command

PHASE_APPS = ("ph_catalog", "ph_orders", "ph_billing")


@pytest.fixture
def database():
    with fresh_database() as name:
        yield name


@pytest.fixture
def scenarios(tmp_path: Path) -> Path:
    for name in PHASE_APPS:
        copy_scenario(name, tmp_path)
    return tmp_path


def env_for(database: str, scenarios: Path, settings=None, **kwargs):
    return command_env(
        database, apps=PHASE_APPS, pythonpath=[scenarios], settings=settings, **kwargs
    )


def columns(database: str, table: str) -> set[str]:
    rows = query(
        database,
        "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 "
        "AND NOT attisdropped",
        [table],
    )
    return {r[0] for r in rows}


def start(database: str, env) -> None:
    """Django's own apps, then the first migration of each scenario app.

    A database with something applied is governed from then on.
    """
    run_command(["safemigrate", "auth"], env, expect=0)
    run_command(["safemigrate", "contenttypes"], env, expect=0)
    for app in PHASE_APPS:
        run_command(["safemigrate", app, "0001"], env, expect=0)


def make_user(env, username: str, *, may_decide: bool) -> None:
    code = textwrap.dedent(
        f"""
        from django.contrib.auth.models import Permission, User
        user = User.objects.create_user({username!r}, password="pw", is_staff=True)
        if {may_decide!r}:
            user.user_permissions.add(Permission.objects.get(codename="decide_migration"))
        """
    )
    run_command(["shell", "-c", code], env, expect=0)


def review(env, app: str, name: str, decision: str, user: str, *, note="looked at it", expect=0):
    return run_command(
        ["reviewmigration", app, name, f"--{decision}", "--note", note, "--as", user],
        env,
        expect=expect,
    )


def reviews(database: str) -> list[tuple[str, str, str, str]]:
    return query(
        database,
        "SELECT g.app_label || '.' || g.name, r.decision, r.reviewer_name, r.checksum "
        "FROM django_safemigrate_review r JOIN django_safemigrate_governedmigration g "
        "ON g.id = r.migration_id ORDER BY r.id",
    )


# -- phases over three apps ---------------------------------------------------------------


def test_pre_deploy_phase_stops_at_a_pre_deploy_migration_behind_a_post_deploy_one(
    database, scenarios
):
    env = env_for(database, scenarios)
    start(database, env)
    before = applied(database)

    result = run_command(["safemigrate", "--phase", "pre"], env, expect=3)
    assert applied(database) == before, "nothing may be applied when the plan is blocked"
    assert "ph_orders.0003_order_ref is a pre-deploy migration but depends on " in result.err
    assert "ph_catalog.0003_remove_product_legacy_code, which waits for the post-deploy" in (
        result.err
    )
    assert "nothing was applied" in result.err


def test_pre_deploy_phase_applies_what_it_can_with_apply_unblocked(database, scenarios):
    env = env_for(database, scenarios)
    start(database, env)

    result = run_command(["safemigrate", "--phase", "pre", "--apply-unblocked"], env, expect=0)
    now = set(applied(database))
    assert ("ph_catalog", "0002_product_slug") in now
    assert ("ph_orders", "0002_order_note") in now
    held = {
        ("ph_catalog", "0003_remove_product_legacy_code"),  # post-deploy (drops a column)
        ("ph_orders", "0003_order_ref"),  # pre-deploy, but behind the drop: blocked
        ("ph_billing", "0002_rename_invoice_amount"),  # post-deploy (a rename)
        ("ph_billing", "0003_invoice_currency"),  # "always", behind the rename: deferred
    }
    assert not held & now
    assert "legacy_code" in columns(database, "ph_catalog_product")
    assert "ph_orders.0003_order_ref (blocked)" in result.err
    assert "ph_billing.0003_invoice_currency (deferred)" in result.err

    # After the rollout: the post-deploy phase runs the contract steps, once reviewed.
    result = run_command(["safemigrate", "--phase", "post"], env, expect=3)
    assert "needs a review (destructive) and has none" in result.err
    assert "ph_catalog.0003_remove_product_legacy_code needs a review" in result.err
    assert "ph_billing.0002_rename_invoice_amount needs a review" in result.err
    assert "manage.py reviewmigration ph_billing 0002_rename_invoice_amount --approve" in (
        result.err
    )
    make_user(env, "rita", may_decide=True)
    review(env, "ph_catalog", "0003_remove_product_legacy_code", "approve", "rita")
    review(env, "ph_billing", "0002_rename_invoice_amount", "approve", "rita")
    run_command(["safemigrate", "--phase", "post"], env, expect=0)
    assert held <= set(applied(database))
    assert "legacy_code" not in columns(database, "ph_catalog_product")
    assert "total" in columns(database, "ph_billing_invoice")


def test_a_new_database_runs_everything_unless_configured(database, scenarios):
    run_command(["safemigrate", "--phase", "pre"], env_for(database, scenarios), expect=0)
    assert len([k for k in applied(database) if k[0] in PHASE_APPS]) == 9


def test_a_new_database_can_be_governed_too(database, scenarios):
    # On a new database no table exists yet, so nothing is inferred as a contract step
    # (no old code uses what a migration drops); a declared phase still counts.
    path = scenarios / "ph_catalog" / "migrations" / "0003_remove_product_legacy_code.py"
    path.write_text(
        path.read_text().replace(
            "    operations =", '    safemigrate_phase = "post_deploy"\n    operations ='
        )
    )
    governed = env_for(database, scenarios, settings={"GOVERN_FRESH_DATABASE": True})
    result = run_command(["safemigrate", "--phase", "pre"], governed, expect=3)
    assert "ph_orders.0003_order_ref is a pre-deploy migration" in result.err
    assert not [k for k in applied(database) if k[0] in PHASE_APPS]
    run_command(["safemigrate", "--phase", "pre"], env_for(database, scenarios), expect=0)


def test_plan_shows_the_gate_decision_and_changes_nothing(database, scenarios):
    env = env_for(database, scenarios)
    start(database, env)
    before = applied(database)
    # A run would stop (exit 3): so does the plan.
    result = run_command(["safemigrate", "--plan", "--phase", "pre"], env, expect=3)
    assert applied(database) == before
    out = result.out
    assert "ph_catalog.0003_remove_product_legacy_code: destructive, post_deploy" in out
    assert "review pending" in out
    assert "deferred" in out
    assert "ph_orders.0003_order_ref: safe, pre_deploy" in out
    assert "blocked" in out
    # Each migration is named once, on the line with its judgement.
    assert out.count("ph_orders.0003_order_ref") == 1, out


# -- reviews ----------------------------------------------------------------------------


def test_destructive_migration_is_blocked_until_approved_and_approval_is_bound_to_checksum(
    database, scenarios
):
    env = env_for(database, scenarios)
    start(database, env)
    run_command(["safemigrate", "ph_catalog", "0002"], env, expect=0)

    blocked = run_command(["safemigrate", "ph_catalog"], env, expect=3)
    assert "ph_catalog.0003_remove_product_legacy_code needs a review (destructive)" in blocked.err
    assert ("ph_catalog", "0003_remove_product_legacy_code") not in applied(database)
    (row,) = query(
        database,
        "SELECT status, risk, phase, sql, analysis FROM django_safemigrate_governedmigration "
        "WHERE name = '0003_remove_product_legacy_code'",
    )
    status, risk, phase, sql, analysis = row
    assert (status, risk, phase) == ("pending_review", "destructive", "post_deploy")
    assert "DROP COLUMN" in sql
    assert "legacy_code" in sql
    assert any(f["code"] == "SM201" for f in analysis["findings"])
    assert analysis["steps"][0]["locks"].startswith("lock ACCESS EXCLUSIVE")
    assert analysis["tables"][0]["name"] == "ph_catalog_product"

    make_user(env, "rita", may_decide=True)
    review(env, "ph_catalog", "0003", "approve", "rita", note="column unused since v41")

    # The file is edited after the approval: the approval no longer counts.
    path = scenarios / "ph_catalog" / "migrations" / "0003_remove_product_legacy_code.py"
    path.write_text(
        path.read_text().replace(
            'operations = [migrations.RemoveField("product", "legacy_code")]',
            'operations = [\n        migrations.RemoveField("product", "legacy_code"),\n'
            '        migrations.RemoveField("product", "name"),\n    ]',
        )
    )
    stale = run_command(["safemigrate", "ph_catalog"], env, expect=3)
    assert "was approved for another version of the file" in stale.err
    assert ("ph_catalog", "0003_remove_product_legacy_code") not in applied(database)
    assert {"legacy_code", "name"} <= columns(database, "ph_catalog_product")

    review(env, "ph_catalog", "0003", "approve", "rita", note="both columns unused")
    run_command(["safemigrate", "ph_catalog"], env, expect=0)
    assert ("ph_catalog", "0003_remove_product_legacy_code") in applied(database)
    assert not {"legacy_code", "name"} & columns(database, "ph_catalog_product")
    history = reviews(database)
    assert [(h[1], h[2]) for h in history] == [("approve", "rita"), ("approve", "rita")]
    assert history[0][3] != history[1][3], "each approval is bound to the checksum it saw"
    (status, marked_at, blocked_reason) = query(
        database,
        "SELECT status, applied_at, blocked_reason FROM django_safemigrate_governedmigration "
        "WHERE name = '0003_remove_product_legacy_code'",
    )[0]
    assert (status, blocked_reason) == ("applied", "")
    # Marked by the statement that recorded the migration, in its transaction: never a
    # migration applied with its review record still waiting, nor the reverse.
    ((recorded_at,),) = query(
        database,
        "SELECT applied FROM django_migrations WHERE name = '0003_remove_product_legacy_code'",
    )
    assert marked_at == recorded_at


@pytest.mark.once
def test_a_rejection_blocks_until_a_later_approval(database, scenarios):
    env = env_for(database, scenarios, settings={"REVIEW": "never"})
    start(database, env)
    make_user(env, "rita", may_decide=True)
    # Reviews are not required here, but a rejection is a human "no" and still blocks.
    review(env, "ph_catalog", "0002", "reject", "rita", note="wrong slug length")
    result = run_command(["safemigrate", "ph_catalog", "0002"], env, expect=3)
    assert "ph_catalog.0002_product_slug was rejected by a reviewer" in result.err
    review(env, "ph_catalog", "0002", "approve", "rita", note="fine after all")
    run_command(["safemigrate", "ph_catalog", "0002"], env, expect=0)


def test_reviewmigration_refuses_without_permission_and_records_nothing(database, scenarios):
    env = env_for(database, scenarios)
    start(database, env)
    make_user(env, "sam", may_decide=False)
    result = review(env, "ph_catalog", "0003", "approve", "sam", expect=2)
    assert "may not approve or reject migrations" in result.err
    assert "Nothing was recorded" in result.err
    assert reviews(database) == []
    result = review(env, "ph_catalog", "0003", "approve", "nobody", expect=2)
    assert "There is no user 'nobody'" in result.err
    result = review(env, "ph_catalog", "9999", "approve", "sam", expect=2)
    assert reviews(database) == []
    result = review(env, "ph_catalog", "0003", "approve", "sam", note="  ", expect=2)
    assert "--note must say why" in result.err


@pytest.mark.once
def test_reviews_are_append_only_in_the_database(database, scenarios):
    env = env_for(database, scenarios)
    start(database, env)
    make_user(env, "rita", may_decide=True)
    review(env, "ph_catalog", "0003", "approve", "rita")
    import psycopg

    from tests.helpers import connect

    refused = pytest.raises(psycopg.errors.IntegrityConstraintViolation, match="append-only")
    with connect(database) as conn, refused:
        conn.execute("UPDATE django_safemigrate_review SET decision = 'reject'")
    refused = pytest.raises(psycopg.errors.IntegrityConstraintViolation, match="append-only")
    with connect(database) as conn, refused:
        conn.execute("DELETE FROM django_safemigrate_review")
    assert [r[1] for r in reviews(database)] == ["approve"]


@pytest.mark.once
def test_acknowledgement_does_not_replace_the_review(database, scenarios):
    env = env_for(database, scenarios)
    start(database, env)
    run_command(["safemigrate", "ph_catalog", "0002"], env, expect=0)
    path = scenarios / "ph_catalog" / "migrations" / "0003_remove_product_legacy_code.py"
    path.write_text(
        path.read_text().replace(
            "    operations =",
            '    safemigrate_acknowledge = {"SM201": "unused since v41"}\n    operations =',
        )
    )
    result = run_command(["safemigrate", "ph_catalog"], env, expect=3)
    assert "needs a review (destructive)" in result.err


# -- signals --------------------------------------------------------------------------------

RECEIVERS = """
import json, os
from django.apps import AppConfig
from django_safemigrate.governance.signals import (
    migration_applied, migration_blocked, migration_reviewed,
)

LOG = os.environ["SIGNAL_LOG"]


def write(kind, **data):
    with open(LOG, "a") as f:
        f.write(json.dumps({"signal": kind, **data}) + "\\n")


def blocked(sender, app_label, name, reasons, risk, **kw):
    write("blocked", migration=f"{app_label}.{name}", risk=str(risk), reasons=list(reasons))


def reviewed(sender, review, migration, **kw):
    write("reviewed", migration=str(migration), decision=review.decision)


def applied(sender, app_label, name, **kw):
    write("applied", migration=f"{app_label}.{name}")


class Config(AppConfig):
    name = "signal_log"

    def ready(self):
        migration_blocked.connect(blocked)
        migration_reviewed.connect(reviewed)
        migration_applied.connect(applied)
"""


@pytest.mark.once
def test_signals_for_blocked_reviewed_and_applied(database, scenarios, tmp_path):
    package = scenarios / "signal_log"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "apps.py").write_text(RECEIVERS)
    log = tmp_path / "signals.jsonl"
    env = command_env(
        database,
        apps=(*PHASE_APPS, "signal_log.apps.Config"),
        pythonpath=[scenarios],
        extra={"SIGNAL_LOG": str(log)},
    )
    start(database, env)
    run_command(["safemigrate", "ph_catalog", "0002"], env, expect=0)
    log.write_text("")
    run_command(["safemigrate", "ph_catalog"], env, expect=3)
    make_user(env, "rita", may_decide=True)
    review(env, "ph_catalog", "0003", "approve", "rita")
    run_command(["safemigrate", "ph_catalog"], env, expect=0)
    events = [json.loads(line) for line in log.read_text().splitlines()]
    kinds = [(e["signal"], e["migration"]) for e in events]
    name = "ph_catalog.0003_remove_product_legacy_code"
    assert kinds == [("blocked", name), ("reviewed", name), ("applied", name)]
    assert events[0]["risk"] == "destructive"
    assert "needs a review" in events[0]["reasons"][0]
    assert events[1]["decision"] == "approve"
