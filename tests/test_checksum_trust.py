"""Checksums end to end: real processes, a real database, the previous release's records.

* a history that renames a model deploys twice (``contenttypes`` inserts operations into
  the migration being applied; they are not part of the file);
* an approval stops counting when the code the migration reaches changes (a helper in
  another module, a module constant it reads, a custom operation class);
* a ledger, approvals and a lockfile written by the previous release (its own code, run
  from ``git archive main``) are not seen as edited, while an edit made before the
  upgrade still is.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
import textwrap
from pathlib import Path

import pytest

from tests.helpers import (
    ROOT,
    Result,
    applied,
    command_env,
    copy_scenario,
    fresh_database,
    query,
    run_command,
)

HELPERS = ("ck_helpers",)
MARK = ("ck_helpers", "0002_mark_items")


@pytest.fixture
def database():
    with fresh_database() as name:
        yield name


def make_user(env, username: str, *, runner=run_command) -> None:
    code = textwrap.dedent(
        f"""
        from django.contrib.auth.models import Permission, User
        user = User.objects.create_user({username!r}, password="pw", is_staff=True)
        user.user_permissions.add(Permission.objects.get(codename="decide_migration"))
        """
    )
    runner(["shell", "-c", code], env, expect=0)


def approve(env, app: str, name: str, user: str, *, runner=run_command) -> None:
    runner(
        ["reviewmigration", app, name, "--approve", "--note", "read it", "--as", user],
        env,
        expect=0,
    )


def ledger_checksums(database: str) -> dict[tuple[str, str], list[tuple[str, str]]]:
    rows = query(
        database,
        "SELECT app_label, name, outcome, checksum FROM django_safemigrate_migrationrecord "
        "ORDER BY id",
    )
    found: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for app, name, outcome, checksum in rows:
        found.setdefault((app, name), []).append((outcome, checksum))
    return found


def edit(path: Path, old: str, new: str) -> str:
    original = path.read_text()
    assert old in original, f"{old!r} not in {path}"
    path.write_text(original.replace(old, new))
    return original


# -- a history that renames a model ------------------------------------------------------


def test_a_history_that_renames_a_model_deploys_twice(database, tmp_path):
    copy_scenario("ck_renamed", tmp_path)
    env = command_env(database, apps=["ck_renamed"], pythonpath=[tmp_path])

    first = run_command(["safemigrate"], env, expect=0)
    assert ("ck_renamed", "0002_rename_post_article") in applied(database)
    # contenttypes did insert its operation into the migration it applied ...
    assert query(
        database,
        "SELECT model FROM django_content_type WHERE app_label = 'ck_renamed'",
    ) in ([], [("article",)])
    # ... and the checksum recorded is the file's, not the one with that operation.
    second = run_command(["safemigrate"], env, expect=0)
    assert "No migrations to apply." in second.out, second.out + second.err
    assert "edited" not in second.err
    third = run_command(["safemigrate"], env, expect=0)
    assert "No migrations to apply." in third.out
    assert first.code == second.code == third.code == 0


# -- an approval covers the code the migration reaches -----------------------------------


def test_an_approval_stops_counting_when_the_code_the_migration_reaches_changes(database, tmp_path):
    app = copy_scenario("ck_helpers", tmp_path)
    env = command_env(database, apps=HELPERS, pythonpath=[tmp_path], settings={"REVIEW": "risky"})
    run_command(["safemigrate", "auth"], env, expect=0)
    run_command(["safemigrate", "ck_helpers", "0001"], env, expect=0)
    pending = run_command(["safemigrate"], env, expect=3)
    assert "ck_helpers.0002_mark_items needs a review" in pending.err
    make_user(env, "rita")
    approve(env, "ck_helpers", "0002", "rita")

    edits = [
        # The helper the RunPython function calls, in another module, now deletes rows.
        (
            app / "cleanup.py",
            "Item.objects.filter(name=KEEP).update(active=True)",
            "Item.objects.all().delete()",
        ),
        # A constant it reads, imported from a third module.
        (app / "limits.py", 'KEEP = "keep"', 'KEEP = "gone"'),
        # The custom operation class's database_forwards.
        (
            app / "operations.py",
            "UPDATE ck_helpers_item SET active = true WHERE name = 'keep'",
            "DELETE FROM ck_helpers_item",
        ),
    ]
    for path, old, new in edits:
        original = edit(path, old, new)
        stale = run_command(["safemigrate"], env, expect=3)
        assert "was approved for another version of the file" in stale.err, (path, stale.err)
        assert MARK not in applied(database)
        path.write_text(original)

    # A cosmetic edit of the helper keeps the approval.
    edit(
        app / "cleanup.py",
        "    Item.objects.filter(name=KEEP).update(active=True)",
        "    # Only the rows to keep.\n    Item.objects.filter(\n        name=KEEP,\n"
        "    ).update(active=True)",
    )
    run_command(["safemigrate"], env, expect=0)
    assert MARK in applied(database)


# -- upgrading from the previous release -------------------------------------------------


#: The last released code whose ledgers hold version 1 checksums.
PREVIOUS_RELEASE = "7eb7285e"


@pytest.fixture(scope="module")
def previous_release(tmp_path_factory) -> Path:
    """The previous release's code, unpacked from git history."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", PREVIOUS_RELEASE],
        capture_output=True,
        check=False,
    )
    if archive.returncode != 0:
        pytest.skip(
            f"the previous release ({PREVIOUS_RELEASE}) is not in this checkout's history "
            f"(a shallow clone?): {archive.stderr!r}"
        )
    target = tmp_path_factory.mktemp("previous_release")
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(target, filter="data")
    assert (target / "django_safemigrate" / "checksum.py").exists()
    return target


def old_command(root: Path):
    """``run_command`` for the previous release: its manage.py, its package first."""

    def run(args, env, *, expect):
        env = {**env, "PYTHONPATH": os.pathsep.join([str(root), env["PYTHONPATH"]])}
        proc = subprocess.run(
            [sys.executable, str(root / "manage.py"), *args],
            env=env,
            cwd=root,
            capture_output=True,
            text=True,
            timeout=120,
            stdin=subprocess.DEVNULL,
            check=False,
        )
        result = Result(proc.stdout, proc.stderr, proc.returncode, 0.0)
        assert expect is None or result.code == expect, (
            f"previous release: expected exit {expect}, got {result.code}\n"
            f"{result.out}\n{result.err}"
        )
        return result

    return run


@pytest.mark.once
def test_the_previous_release_is_the_one_tested(previous_release, database, tmp_path):
    """The old code really runs (its checksums are version 1)."""
    copy_scenario("ck_helpers", tmp_path)
    env = command_env(database, apps=HELPERS, pythonpath=[tmp_path])
    old = old_command(previous_release)
    old(["safemigrate"], env, expect=0)
    records = ledger_checksums(database)
    assert records[MARK][-1][1].startswith("sha256:")
    assert not records[MARK][-1][1].startswith("sha256:v")


@pytest.mark.once
def test_upgrade_keeps_unchanged_history_and_catches_an_earlier_edit(previous_release, tmp_path):
    apps = ("ck_renamed", "ck_helpers")
    for name in apps:
        copy_scenario(name, tmp_path)
    lock = tmp_path / "migrations.lock"
    old = old_command(previous_release)
    with fresh_database() as database:
        env = command_env(
            database, apps=apps, pythonpath=[tmp_path], settings={"LOCKFILE": str(lock)}
        )
        old(["safemigrate"], env, expect=0)
        old(["checkmigrations", "--update-lockfile"], env, expect=0)
        before = ledger_checksums(database)
        assert all(rows[-1][1].startswith("sha256:") for rows in before.values())
        # The old release recorded the renaming migration with contenttypes' operation in it.
        renamed = ("ck_renamed", "0002_rename_post_article")

        checked = run_command(["checkmigrations", "--all", "--format", "json"], env, expect=None)
        assert checked.code in (0, 1), checked.err
        assert "SM903" not in checked.output
        assert "SM904" not in checked.output

        upgraded = run_command(["safemigrate"], env, expect=0)
        assert "No migrations to apply." in upgraded.out
        assert "edited" not in upgraded.err
        after = ledger_checksums(database)
        for key, rows in after.items():
            # (This release's own new ledger migrations are applied by the upgrade.)
            old_rows = before.get(key, [])
            assert rows[: len(old_rows)] == old_rows, "the old rows stay"
            _outcome, checksum = rows[-1]
            assert checksum.startswith("sha256:v2:"), key
        assert after[renamed][-1][0] == "adopted"
        assert len(after[renamed]) == len(before[renamed]) + 1
        # Re-baselined once: the next run finds nothing to do and writes nothing.
        run_command(["safemigrate"], env, expect=0)
        assert ledger_checksums(database) == after

    # An edit made before the upgrade (ledger and lockfile written by the old release).
    with fresh_database() as database:
        env = command_env(
            database, apps=apps, pythonpath=[tmp_path], settings={"LOCKFILE": str(lock)}
        )
        old(["safemigrate"], env, expect=0)
        edit(
            tmp_path / "ck_helpers" / "migrations" / "0002_mark_items.py",
            "migrations.RunPython(cleanup.forwards, migrations.RunPython.noop)",
            "migrations.RunPython(cleanup.forwards, cleanup.forwards)",
        )
        blocked = run_command(["safemigrate"], env, expect=3)
        assert "ck_helpers.0002_mark_items" in blocked.err
        assert "edited" in blocked.err
        checked = run_command(["checkmigrations", "--all"], env, expect=None)
        assert "SM903" in checked.output
        assert "SM904" in checked.output
        assert "ck_renamed" not in blocked.err


@pytest.mark.once
def test_an_approval_given_by_the_previous_release_counts_for_the_same_file(
    previous_release, database, tmp_path
):
    app = copy_scenario("ck_helpers", tmp_path)
    env = command_env(database, apps=HELPERS, pythonpath=[tmp_path], settings={"REVIEW": "risky"})
    old = old_command(previous_release)
    old(["safemigrate", "auth"], env, expect=0)
    old(["safemigrate", "ck_helpers", "0001"], env, expect=0)
    old(["safemigrate"], env, expect=3)
    make_user(env, "rita", runner=old)
    approve(env, "ck_helpers", "0002", "rita", runner=old)
    (checksum,) = query(database, "SELECT checksum FROM django_safemigrate_review")[0]
    assert not checksum.startswith("sha256:v")

    # Edited after that approval: it does not count.
    migration = app / "migrations" / "0002_mark_items.py"
    original = edit(
        migration,
        "migrations.RunPython(cleanup.forwards, migrations.RunPython.noop)",
        "migrations.RunPython(cleanup.forwards, cleanup.forwards)",
    )
    stale = run_command(["safemigrate"], env, expect=3)
    assert "was approved for another version of the file" in stale.err
    assert MARK not in applied(database)

    # The file it was given for: it counts.
    migration.write_text(original)
    run_command(["safemigrate"], env, expect=0)
    assert MARK in applied(database)


# -- an applied migration: its own file against the code it reaches ----------------------


def test_an_edited_helper_of_an_applied_migration_is_noted_not_refused(database, tmp_path):
    """The database ran the helper as it was: changing it later is no edit of history.

    The migration's own file is still compared exactly (SM903, exit 3), and so is the
    reached code for approvals (the test above).
    """
    app = copy_scenario("ck_helpers", tmp_path)
    env = command_env(database, apps=HELPERS, pythonpath=[tmp_path])
    run_command(["safemigrate"], env, expect=0)
    assert MARK in applied(database)
    definitions = query(
        database,
        "SELECT definition FROM django_safemigrate_migrationrecord "
        "WHERE app_label = %s AND name = %s",
        MARK,
    )
    assert definitions
    assert all(d and d.startswith("sha256:v2:") for (d,) in definitions)

    edit(app / "cleanup.py", "update(active=True)", "update(active=False)")
    noted = run_command(["safemigrate"], env, expect=0)
    assert "No migrations to apply." in noted.out
    assert "project code that applied migrations reach changed" in noted.err
    assert "ck_helpers.0002_mark_items" in noted.err
    outcomes = [outcome for outcome, _ in ledger_checksums(database)[MARK]]
    assert outcomes == ["applied", "adopted"]
    check = run_command(["checkmigrations", "--format", "json"], env, expect=None)
    assert "SM903" not in check.out
    # The change is the new baseline: said once.
    again = run_command(["safemigrate"], env, expect=0)
    assert "reach changed" not in again.err
    assert len(ledger_checksums(database)[MARK]) == 2

    # An edit of the migration's own file is still an edit.
    edit(
        app / "migrations" / "0002_mark_items.py",
        "migrations.RunPython(cleanup.forwards, migrations.RunPython.noop),",
        "migrations.RunPython(cleanup.forwards, cleanup.forwards),",
    )
    refused = run_command(["safemigrate"], env, expect=3)
    assert "Applied migrations were edited after they were applied" in refused.err
    assert "ck_helpers.0002_mark_items" in refused.err
    # --plan exits with the code the run would.
    planned = run_command(["safemigrate", "--plan"], env, expect=3)
    assert "A run would stop here" in planned.err
    check = run_command(["checkmigrations", "--format", "json"], env, expect=None)
    assert "SM903" in check.out
