"""Governed rollbacks: a plan that unapplies migrations is judged on its reverse SQL.

``firstdeploy.0003`` adds a column: unapplying it drops the column and its data, which
needs a review of the rollback like any destructive migration. Approving the migration
does not approve unapplying it; the ledger keeps who approved the rollback.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import applied, command_env, copy_scenario, fresh_database, query, run_command

pytestmark = pytest.mark.django_db(transaction=True)

APP = "firstdeploy"


@pytest.fixture
def database() -> Iterator[str]:
    with fresh_database("sm_rollback") as name:
        yield name


@pytest.fixture
def env(database: str, tmp_path: Path) -> dict[str, str]:
    copy_scenario(APP, tmp_path)
    env = command_env(database, apps=[APP], pythonpath=[tmp_path])
    # The first deploy applies everything; the rollback that follows is governed.
    run_command(["safemigrate"], env, expect=0)
    code = textwrap.dedent(
        """
        from django.contrib.auth.models import Permission, User
        user = User.objects.create_user("rita", password="pw", is_staff=True)
        user.user_permissions.add(Permission.objects.get(codename="decide_migration"))
        """
    )
    run_command(["shell", "-c", code], env, expect=0)
    return env


def columns(database: str) -> set[str]:
    rows = query(
        database,
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'firstdeploy_item'",
    )
    return {row[0] for row in rows}


def review(env: dict[str, str], name: str, *flags: str) -> None:
    args = ["reviewmigration", APP, name, *flags, "--approve", "--note", "checked", "--as", "rita"]
    run_command(args, env, expect=0)


def test_unapplying_a_column_needs_an_approved_rollback(database: str, env) -> None:
    query(database, "INSERT INTO firstdeploy_item (name, code) VALUES ('a', 'keep me')")

    plan = run_command(["safemigrate", APP, "0002", "--plan"], env, expect=3)
    assert "firstdeploy.0003_item_code (unapply): destructive, review pending, blocked" in plan.out
    assert 'ALTER TABLE "firstdeploy_item" DROP COLUMN "code"' in plan.out

    blocked = run_command(["safemigrate", APP, "0002"], env, expect=3)
    assert "unapplying 1 migration(s) needs a review of the rollback" in blocked.err
    assert "firstdeploy.0003_item_code needs a review (destructive)" in blocked.err
    assert "reviewmigration firstdeploy 0003_item_code --rollback --approve" in blocked.err
    # Nothing was unapplied, not even 0004, whose reverse (adding a column back) is safe.
    assert (APP, "0004_remove_item_legacy") in applied(database, APP)
    assert "code" in columns(database)

    # Approving the migration is not approving its rollback.
    review(env, "0003")
    run_command(["safemigrate", APP, "0002"], env, expect=3)

    review(env, "0003", "--rollback")
    run_command(["safemigrate", APP, "0002"], env, expect=0)

    assert (APP, "0003_item_code") not in applied(database, APP)
    assert "code" not in columns(database)
    assert "legacy" in columns(database)
    ((approval,),) = query(
        database,
        "SELECT approval FROM django_safemigrate_migrationrecord "
        "WHERE app_label = %s AND name = '0003_item_code' AND outcome = 'unapplied'",
        [APP],
    )
    assert approval.startswith("approved by rita at ")
    assert "(command, review " in approval
    assert approval.endswith("): checked")
    states = query(
        database,
        "SELECT direction, status, applied_at IS NOT NULL FROM "
        "django_safemigrate_governedmigration WHERE app_label = %s AND name = '0003_item_code' "
        "ORDER BY direction",
        [APP],
    )
    # The rollback ran; the migration waits to be applied again, with its approval.
    assert states == [("backward", "applied", True), ("forward", "approved", False)]


def test_a_safe_reverse_needs_no_review(database: str, env) -> None:
    run_command(["safemigrate", APP, "0003"], env, expect=0)
    assert (APP, "0004_remove_item_legacy") not in applied(database, APP)
    assert "legacy" in columns(database)


def test_an_irreversible_migration_stops_the_rollback_before_anything(
    database: str, env, tmp_path: Path
) -> None:
    (tmp_path / APP / "migrations" / "0005_forward_only.py").write_text(
        textwrap.dedent(
            """
            from django.db import migrations


            def forward(apps, schema_editor):
                pass


            class Migration(migrations.Migration):
                dependencies = [("firstdeploy", "0004_remove_item_legacy")]
                operations = [migrations.RunPython(forward)]
            """
        )
    )
    run_command(["safemigrate"], env, expect=0)

    result = run_command(["safemigrate", APP, "0003"], env, expect=2)

    assert "firstdeploy.0005_forward_only: operation 1 (RunPython" in result.err
    assert "Nothing was unapplied." in result.err
    assert (APP, "0005_forward_only") in applied(database, APP)
    assert (APP, "0004_remove_item_legacy") in applied(database, APP)
