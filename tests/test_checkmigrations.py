"""``checkmigrations`` end to end: selection, formats, policies, project problems, bad input."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.helpers import (
    command_env,
    copy_scenario,
    fresh_database,
    query,
    run_command,
)

NO_DB = "postgres://postgres@127.0.0.1:1/nothing_listens_here"


@pytest.fixture
def scenarios(tmp_path: Path) -> Path:
    for name in ("basic", "risky", "acked", "conflicted", "drifted", "broken"):
        copy_scenario(name, tmp_path)
    return tmp_path


def env_for(scenarios: Path, *apps: str, database: str | None = None, **kwargs):
    # These tests are about the command's machinery, on lock findings that count: with
    # online execution (tests/test_online.py) safemigrate would answer them.
    settings = kwargs.get("settings")
    if settings is None or (isinstance(settings, dict) and "ONLINE" not in settings):
        kwargs["settings"] = {"ONLINE": False, **(settings or {})}
    env = command_env(
        database,
        apps=apps,
        pythonpath=[scenarios],
        database_url=None if database else NO_DB,
        **kwargs,
    )
    env["SCENARIO_BASE_DIR"] = str(scenarios)
    return env


def check(scenarios, *args, apps=("risky",), expect, database=None, **kwargs):
    # From the project's directory, as CI runs it: paths in reports are relative to it.
    return run_command(
        ["checkmigrations", *args],
        env_for(scenarios, *apps, database=database, **kwargs),
        expect=expect,
        cwd=scenarios,
    )


def as_json(result) -> dict:
    return json.loads(result.out)


def test_all_offline_reports_risky_and_destructive_with_hints(scenarios):
    result = check(scenarios, "risky", "--all", "--offline", expect=1)
    assert "risky/migrations/0002_item_name_index.py:8: SM101 [risky]" in result.out
    assert "risky/migrations/0003_remove_item_legacy.py:7: SM201 [destructive]" in result.out
    assert "hint: Build it with django.contrib.postgres.operations.AddIndexConcurrently" in (
        result.out
    )
    assert "fails --fail-on risky" in result.out


@pytest.mark.once
def test_json_follows_schema_version_1(scenarios):
    data = as_json(check(scenarios, "--all", "--offline", "--format", "json", expect=1))
    assert set(data) == {"schema_version", "database", "migrations", "problems", "summary"}
    assert data["schema_version"] == 1
    assert data["database"] is None
    by_name = {m["name"]: m for m in data["migrations"] if m["app_label"] == "risky"}
    index = by_name["0002_item_name_index"]
    assert {
        "app_label",
        "name",
        "path",
        "checksum",
        "applied",
        "atomic",
        "risk",
        "findings",
    } <= set(index)
    assert index["risk"] == "risky"
    assert index["checksum"].startswith("sha256:")
    finding = next(f for f in index["findings"] if f["code"] == "SM101")
    assert {
        "code",
        "rule",
        "severity",
        "operation_index",
        "operation",
        "line",
        "table",
        "lock",
        "rewrites_table",
        "sql",
        "message",
        "hint",
    } <= set(finding)
    assert finding["rule"] == "add-index-blocks-writes"
    assert finding["operation"] == "AddIndex"
    assert finding["operation_index"] == 1
    assert finding["line"] == 8
    assert finding["table"] == "risky_item"
    # CREATE INDEX alone takes SHARE, but the AddField before it in the same transaction
    # took ACCESS EXCLUSIVE on the table, held through the whole build.
    assert finding["lock"] == "ACCESS EXCLUSIVE"
    assert finding["held_locks"] == [
        {
            "table": "risky_item",
            "lock": "ACCESS EXCLUSIVE",
            "operation_index": 0,
            "sql": 'ALTER TABLE "risky_item" ADD COLUMN "legacy" varchar(20) NULL',
        }
    ]
    assert finding["rewrites_table"] is False
    assert finding["sql"].startswith("CREATE INDEX")
    assert by_name["0003_remove_item_legacy"]["risk"] == "destructive"
    summary = data["summary"]
    assert summary["migrations"] == len(data["migrations"])
    for risk in ("safe", "risky", "destructive"):
        assert summary[risk] == sum(m["risk"] == risk for m in data["migrations"])
    assert summary["blocking"] == sum(
        f["blocking"] for m in data["migrations"] for f in m["findings"]
    )


def test_github_annotations_point_at_the_line(scenarios):
    result = check(scenarios, "risky", "--all", "--offline", "--format", "github", expect=1)
    lines = [line for line in result.out.splitlines() if line.startswith("::")]
    index = next(line for line in lines if "SM101" in line)
    assert index.startswith("::error file=")
    assert (
        "risky/migrations/0002_item_name_index.py,line=8,title=SM101 add-index-blocks-writes"
        in (index)
    )
    assert "%0AHint: " in index


@pytest.mark.once
@pytest.mark.parametrize(
    ("policy", "expected"),
    [("risky", {"SM101", "SM201"}), ("destructive", {"SM201"}), ("never", set())],
)
def test_json_blocking_means_fails_this_run(scenarios, policy, expected):
    # One meaning for the word: a finding is blocking when it fails the run under the
    # --fail-on in force, and the summary counts exactly those findings.
    result = check(
        scenarios,
        "--all",
        "--offline",
        "--format",
        "json",
        "--fail-on",
        policy,
        apps=("risky", "acked"),
        expect=None,
    )
    assert result.code == (1 if expected else 0), result.output
    data = as_json(result)
    every = [f for m in data["migrations"] for f in m["findings"]]
    assert data["summary"]["blocking"] == sum(f["blocking"] for f in every)
    ours = ("risky", "acked")
    findings = [f for m in data["migrations"] if m["app_label"] in ours for f in m["findings"]]
    assert {f["code"] for f in findings} >= {"SM101", "SM201"}
    assert {f["code"] for f in findings if f["blocking"]} == expected
    # The acknowledged finding never blocks.
    assert all(not f["blocking"] for f in findings if f["acknowledged"])
    assert any(f["acknowledged"] for f in findings)


@pytest.mark.parametrize(("policy", "code"), [("risky", 1), ("destructive", 1), ("never", 0)])
def test_fail_on_policy(scenarios, policy, code):
    check(scenarios, "risky", "--all", "--offline", "--fail-on", policy, expect=code)


def test_fail_on_destructive_passes_when_only_risky(scenarios):
    check(scenarios, "risky", "0002", "--offline", "--fail-on", "destructive", expect=0)
    check(scenarios, "risky", "0002", "--offline", "--fail-on", "risky", expect=1)


def test_fail_on_from_settings(scenarios):
    check(scenarios, "risky", "0002", "--offline", expect=0, settings={"FAIL_ON": "destructive"})


def test_safe_migrations_pass(scenarios):
    result = check(scenarios, "basic", "--all", "--offline", apps=("basic",), expect=0)
    assert "0 blocking finding(s)" in result.out


def test_acknowledged_findings_show_but_do_not_fail(scenarios):
    result = check(scenarios, "acked", "--all", "--offline", apps=("acked",), expect=0)
    assert "SM101 [risky]" in result.out
    assert "acknowledged: acked_item holds a dozen rows" in result.out


def test_acknowledging_an_unknown_code_is_an_error(scenarios):
    path = scenarios / "acked" / "migrations" / "0002_item_name_index.py"
    path.write_text(path.read_text().replace('"SM101"', '"SM999"'))
    result = check(scenarios, "--all", "--offline", apps=("acked",), expect=2)
    assert "acknowledges 'SM999', which is not a rule code" in result.err


def test_rules_can_be_switched_off_or_regraded(scenarios):
    check(scenarios, "risky", "0002", "--offline", expect=0, settings={"RULES": {"SM101": "off"}})
    result = check(
        scenarios,
        "risky",
        "0002",
        "--offline",
        "--fail-on",
        "destructive",
        expect=1,
        settings={"RULES": {"SM101": "destructive"}},
    )
    assert "SM101 [destructive]" in result.out


def test_ignored_migrations_are_skipped(scenarios):
    check(
        scenarios,
        "risky",
        "--all",
        "--offline",
        expect=0,
        settings={"IGNORE": ["risky.0002_item_name_index", "risky.0003_remove_item_legacy"]},
    )


def test_default_selection_is_what_the_database_has_not_applied(scenarios):
    with fresh_database() as database:
        env = env_for(scenarios, "risky", database=database)
        run_command(["migrate"], env, expect=0)
        run_command(["migrate", "risky", "0002"], env, expect=0)
        query(
            database, "INSERT INTO risky_item (name) SELECT 'n' || i FROM generate_series(1, 50) i"
        )
        query(database, "ANALYZE risky_item")
        data = as_json(run_command(["checkmigrations", "--format", "json"], env, expect=1))
        assert [(m["app_label"], m["name"]) for m in data["migrations"]] == [
            ("risky", "0003_remove_item_legacy")
        ]
        assert data["database"]["vendor"] == "postgresql"
        assert data["database"]["alias"] == "default"
        finding = data["migrations"][0]["findings"][0]
        assert finding["code"] == "SM201"
        assert finding["table_rows"] == 50


def test_small_table_lock_findings_do_not_block(scenarios):
    with fresh_database() as database:
        env = env_for(scenarios, "risky", database=database)
        run_command(["migrate", "risky", "0001"], env, expect=0)
        result = run_command(["checkmigrations", "risky", "0002"], env, expect=0)
        assert "(not blocking: new or small table)" in result.out
        env = env_for(scenarios, "risky", database=database, settings={"SMALL_TABLE_ROWS": 0})
        run_command(["checkmigrations", "risky", "0002"], env, expect=1)


def test_default_selection_needs_the_database(scenarios):
    result = check(scenarios, expect=2)
    assert "Cannot connect to database 'default'" in result.err
    assert "--all or --since" in result.err


def test_conflicting_leaves_are_a_problem(scenarios):
    result = check(scenarios, "--all", "--offline", apps=("conflicted",), expect=1)
    assert "SM902 [problem]" in result.out
    assert "0002_a, 0002_b" in result.out


def test_model_changes_without_migration_are_a_problem(scenarios):
    result = check(scenarios, "--all", "--offline", apps=("drifted",), expect=1)
    assert "SM901 [problem]" in result.out
    assert "colour" in result.out


def test_broken_migration_file_exits_2(scenarios):
    result = check(scenarios, "--all", "--offline", apps=("broken",), expect=2)
    assert "0002_imports_missing_module.py" in result.err
    assert "Traceback" not in result.err
    # The command checks; it never applies anything, and says so.
    assert "Nothing was checked." in result.err
    assert "applied" not in result.err


def test_unknown_app_exits_2(scenarios):
    result = check(scenarios, "nosuchapp", "--all", "--offline", expect=2)
    assert "no installed app with label 'nosuchapp'" in result.err
    assert result.err.rstrip().endswith("Nothing was checked.")


def test_migration_files_select_their_migrations_without_a_database(scenarios):
    # As the pre-commit hook passes them: paths relative to the working directory.
    env = env_for(scenarios, "risky", "basic")
    data = as_json(
        run_command(
            [
                *("checkmigrations", "--format", "json"),
                *("risky/migrations/0002_item_name_index.py", "basic/migrations/0003_item_sku.py"),
            ],
            env,
            expect=1,
            cwd=scenarios,
        )
    )
    assert sorted((m["app_label"], m["name"]) for m in data["migrations"]) == [
        ("basic", "0003_item_sku"),
        ("risky", "0002_item_name_index"),
    ]
    # The same with an absolute path, and one file only.
    result = check(
        scenarios,
        "--offline",
        str(scenarios / "basic" / "migrations" / "0002_item_price.py"),
        apps=("basic",),
        expect=0,
    )
    assert "1 migration(s) checked: 1 safe" in result.out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["risky/migrations/0009_nothing.py"],
            "risky/migrations/0009_nothing.py: not the file of a migration of an installed app.",
        ),
        (["risky/models.py"], "risky/models.py: not the file of a migration of an installed app."),
        (
            ["risky", "risky/migrations/0002_item_name_index.py"],
            "risky: give either an app label (and a migration name) or paths of migration "
            "files ending in .py, not both.",
        ),
        (
            ["--all", "risky/migrations/0002_item_name_index.py"],
            "Migration files select the migrations to check by themselves; give them without "
            "--all or --since.",
        ),
        (
            ["risky", "0002", "0003"],
            "Too many arguments (risky 0002 0003): checkmigrations takes an app label",
        ),
    ],
)
def test_bad_migration_file_arguments_exit_2(scenarios, args, message):
    result = run_command(
        ["checkmigrations", "--offline", *args],
        env_for(scenarios, "risky"),
        expect=2,
        cwd=scenarios,
    )
    assert message in result.err
    assert "Traceback" not in result.err


@pytest.mark.once
def test_lockfile_catches_an_edited_released_migration_without_a_database(scenarios):
    check(scenarios, "--update-lockfile", expect=0)
    lock = (scenarios / "migrations.lock").read_text()
    assert "risky.0002_item_name_index sha256:" in lock
    check(scenarios, "risky", "--all", "--offline", "--fail-on", "never", expect=0)
    path = scenarios / "risky" / "migrations" / "0001_initial.py"
    path.write_text(path.read_text().replace("max_length=50", "max_length=80"))
    result = check(scenarios, "risky", "--all", "--offline", expect=1)
    assert "SM904 [problem] risky.0001_initial was edited after it was released" in result.out
    path.unlink()
    (scenarios / "risky" / "migrations" / "0002_item_name_index.py").unlink()
    (scenarios / "risky" / "migrations" / "0003_remove_item_legacy.py").unlink()
    result = check(scenarios, "--all", "--offline", expect=1)
    assert "SM905" in result.out


@pytest.mark.once
def test_malformed_lockfile_exits_2(scenarios):
    (scenarios / "migrations.lock").write_text("<<<<<<< HEAD\nrisky.0001_initial sha256:x\n")
    result = check(scenarios, "--all", "--offline", expect=2)
    assert "migrations.lock:1: this line is not" in result.err


def test_edited_applied_migration_is_reported_from_the_ledger(scenarios):
    with fresh_database() as database:
        env = env_for(scenarios, "basic", database=database)
        run_command(["safemigrate"], env, expect=0)
        path = scenarios / "basic" / "migrations" / "0002_item_price.py"
        path.write_text(path.read_text().replace("IntegerField", "BigIntegerField"))
        result = run_command(["checkmigrations"], env, expect=1)
        assert "SM903 [problem] basic.0002_item_price was edited after it was applied" in (
            result.out
        )


def git(cwd: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
    )


def test_since_checks_only_migrations_changed_since_the_ref(scenarios):
    git(scenarios, "init", "-q", "-b", "main")
    git(scenarios, "add", "-A")
    git(scenarios, "commit", "-q", "-m", "base")
    git(scenarios, "checkout", "-q", "-b", "feature")
    (scenarios / "risky" / "migrations" / "0004_item_sku.py").write_text(
        "from django.db import migrations, models\n\n\n"
        "class Migration(migrations.Migration):\n"
        '    dependencies = [("risky", "0003_remove_item_legacy")]\n'
        "    operations = [\n"
        '        migrations.AddField("item", "sku", models.TextField(null=True)),\n'
        "    ]\n"
    )
    models_py = scenarios / "risky" / "models.py"
    models_py.write_text(
        models_py.read_text().replace(
            "    class Meta:", "    sku = models.TextField(null=True)\n\n    class Meta:"
        )
    )
    env = env_for(scenarios, "risky")
    data = as_json(
        run_command(
            ["checkmigrations", "--since", "main", "--format", "json"],
            env,
            expect=0,
            cwd=scenarios,
        )
    )
    assert [m["name"] for m in data["migrations"]] == ["0004_item_sku"]
    assert data["migrations"][0]["risk"] == "safe"


@pytest.mark.once
def test_since_compares_the_lockfile_for_changed_migrations_or_all_when_it_changed(scenarios):
    check(scenarios, "--update-lockfile", expect=0)
    lock = scenarios / "migrations.lock"
    released = lock.read_text()
    # The reference already disagrees with its lockfile about 0002 (a past mistake);
    # --all reports it, --since leaves it to the change that made it.
    lock.write_text(
        released.replace(
            "risky.0002_item_name_index sha256:", "risky.0002_item_name_index sha256:0"
        )
    )
    git(scenarios, "init", "-q", "-b", "main")
    git(scenarios, "add", "-A")
    git(scenarios, "commit", "-q", "-m", "base")
    env = env_for(scenarios, "risky")
    since = ["checkmigrations", "--since", "main", "--offline", "--fail-on", "never"]
    result = run_command(since, env, expect=0, cwd=scenarios)
    assert "SM904" not in result.out
    result = check(scenarios, "--all", "--offline", "--fail-on", "never", expect=0)
    assert "SM904 [problem] risky.0002_item_name_index" in result.out

    # A released migration edited in the change: compared, and reported.
    path = scenarios / "risky" / "migrations" / "0001_initial.py"
    path.write_text(path.read_text().replace("max_length=50", "max_length=80"))
    result = run_command(since, env, expect=0, cwd=scenarios)
    assert "SM904 [problem] risky.0001_initial was edited after it was released" in result.out
    assert "risky.0002_item_name_index was edited" not in result.out

    # The lockfile changed in the change too: every migration is compared with it.
    lock.write_text(lock.read_text() + "\n")
    result = run_command(since, env, expect=0, cwd=scenarios)
    assert "SM904 [problem] risky.0001_initial" in result.out
    assert "SM904 [problem] risky.0002_item_name_index" in result.out


@pytest.mark.once
def test_since_refuses_bad_refs_and_works_only_in_git(scenarios):
    env = env_for(scenarios, "risky")
    result = run_command(["checkmigrations", "--since", "main"], env, expect=2, cwd=scenarios)
    assert "not inside a git checkout" in result.err
    git(scenarios, "init", "-q", "-b", "main")
    git(scenarios, "add", "-A")
    git(scenarios, "commit", "-q", "-m", "base")
    result = run_command(
        ["checkmigrations", "--since", "no-such-branch"], env, expect=2, cwd=scenarios
    )
    assert "git could not resolve 'no-such-branch'" in result.err
    result = run_command(
        ["checkmigrations", "--since=--output=/tmp/x"], env, expect=2, cwd=scenarios
    )
    assert "looks like an option and is refused" in result.err


@pytest.mark.once
def test_explain_and_list_rules(scenarios):
    result = check(scenarios, "--explain", "sm101", expect=0)
    assert result.out.startswith("SM101 add-index-blocks-writes (default severity: risky)")
    assert "CONCURRENTLY" in result.out
    result = check(scenarios, "--list-rules", expect=0)
    assert "SM201  drop-column" in result.out
    result = check(scenarios, "--explain", "SM999", expect=2)
    assert "There is no rule 'SM999'" in result.err


def test_invalid_settings_exit_2(scenarios):
    result = check(scenarios, "--all", "--offline", expect=2, settings={"FAIL_ON": "sometimes"})
    assert "safemigrate.E007" in result.err


def test_lockfile_problems_surface_in_manage_py_check(scenarios):
    env = env_for(scenarios, "risky")
    run_command(["checkmigrations", "--update-lockfile"], env, expect=0)
    run_command(["check"], env, expect=0)
    path = scenarios / "risky" / "migrations" / "0002_item_name_index.py"
    path.write_text(path.read_text().replace('name="risky_item_name_idx"', 'name="renamed_idx"'))
    result = run_command(["check"], env, expect=0)
    assert "safemigrate.W001" in result.err
    assert "risky.0002_item_name_index was edited after it was released" in result.err
    # The advice is said once, as the hint.
    assert result.err.count("Restore the released version") == 1
    assert "HINT: Restore the released version" in result.err
    (scenarios / "migrations.lock").write_text("not a lockfile line\n")
    result = run_command(["check"], env, expect=1)
    assert "safemigrate.E012" in result.err


def test_a_broken_graph_is_not_reported_as_an_unreadable_lockfile(scenarios):
    env = env_for(scenarios, "risky")
    run_command(["checkmigrations", "--update-lockfile"], env, expect=0)
    result = run_command(["check"], env_for(scenarios, "risky", "broken"), expect=1)
    assert "safemigrate.E023" in result.err
    assert "safemigrate.E012" not in result.err
    assert "0002_imports_missing_module.py" in result.err
    assert "The lockfile was not compared with the migrations." in result.err


def test_with_all_an_empty_database_does_not_make_every_table_new(scenarios):
    with fresh_database() as database:
        env = env_for(scenarios, "risky", database=database)
        # Nothing is applied here: the tables are missing because this database is
        # empty, not because the deploy creates them. --all judges for production.
        result = run_command(["checkmigrations", "risky", "--all"], env, expect=1)
        assert "SM101 [risky]" in result.out
        assert "not blocking" not in result.out.split("SM101", 1)[1].splitlines()[0]
        # The default selection is what this database would apply next: there the
        # index of 0002 lands on a table 0001 creates in the same deploy, and the column
        # 0003 drops holds no data yet: reported, not blocking.
        result = run_command(["checkmigrations", "risky"], env, expect=0)
        for code in ("SM101", "SM201"):
            line = next(line for line in result.out.splitlines() if code in line)
            assert "(not blocking: new or small table)" in line
