"""The commands on real projects: long migration histories of third-party apps from PyPI.

``tests/realhistory_settings.py`` installs Wagtail, django CMS, django-allauth,
django-oauth-toolkit, django-otp, django-reversion and django-filer beside
``django.contrib``: close to three hundred migrations to apply on a fresh database,
written over a decade by other people, with renamed models, data migrations, raw SQL,
squashes and swappable dependencies. Every command runs as a real ``manage.py``
process against the real server, and the governed result is compared, catalog by
catalog, with what Django's own ``migrate`` builds from the same files; so is what the
``migrate`` override builds.

These tests take a few minutes (marked ``realhistory``; ``-m "not realhistory"``
leaves them out).
"""

from __future__ import annotations

import collections
import dataclasses
import importlib.util
import json
import re
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import pytest

from django_safemigrate.schema.catalog import schema_differences
from tests.helpers import (
    Result,
    command_env,
    fresh_database,
    query,
    run_command,
    schema_of,
    start_command,
)

pytestmark = pytest.mark.realhistory

GOVERNED = "tests.realhistory_settings"
#: The same project without this app: ``migrate`` is Django's core command.
DJANGO_ONLY = "tests.realhistory_django_settings"
#: This app's own tables and functions, which only the governed database has.
OWN_OBJECTS = ("django_safemigrate",)
#: Applying several hundred migrations on a shared CI machine: generous, never endless.
TIMEOUT = 900
#: The installed histories hold more than this many migrations to apply on a fresh
#: database; fewer means an app went missing and the project no longer tests much.
AT_LEAST = 250

#: Modules the ``test`` extra installs for this project.
PACKAGES = ("wagtail", "cms", "allauth", "oauth2_provider", "django_otp", "reversion", "filer")


@dataclasses.dataclass(frozen=True)
class Histories:
    governed: str  # migrated by safemigrate, twice
    reference: str  # migrated by Django's migrate
    overridden: str  # migrated by the migrate override
    first: Result
    second: Result
    reference_migrate: Result
    override_migrate: Result
    recorded_after_first: frozenset[tuple[str, str]]
    recorded_after_second: frozenset[tuple[str, str]]


def recorded(database: str) -> frozenset[tuple[str, str]]:
    """The rows of ``django_migrations`` (squashes record their replaced migrations too)."""
    return frozenset(
        (app, name) for app, name in query(database, "SELECT app, name FROM django_migrations")
    )


def relation_count(database: str) -> int:
    return int(
        query(
            database,
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')",
        )[0][0]
    )


def assert_no_traceback(result: Result) -> None:
    assert "Traceback (most recent call last)" not in result.output, result.output[-4000:]


def plan_names(showmigrations_output: str) -> list[str]:
    """``app.name`` of each line of ``showmigrations --plan``."""
    return re.findall(r"^\[[ X]\]\s+(\S+)$", showmigrations_output, re.M)


@pytest.fixture(scope="module")
def installed() -> None:
    missing = [name for name in PACKAGES if importlib.util.find_spec(name) is None]
    if missing:
        pytest.fail(
            f"The real-history project needs {', '.join(missing)}: "
            "install the test extra (pip install -e '.[test]')."
        )


@pytest.fixture(scope="module")
def empty_database(installed: None) -> Iterator[str]:
    """A fresh database that only read-only commands are run against."""
    with fresh_database("rh") as name:
        yield name


@pytest.fixture(scope="module")
def expected_plan(empty_database: str) -> list[str]:
    """The migrations a fresh database needs, as Django's ``showmigrations`` lists them."""
    env = command_env(empty_database, module=GOVERNED)
    listed = run_command(["showmigrations", "--plan"], env, expect=0, timeout=TIMEOUT)
    names = plan_names(listed.out)
    assert len(names) > AT_LEAST, listed.output
    return names


@pytest.fixture(scope="module")
def histories(installed: None) -> Iterator[Histories]:
    """``safemigrate`` twice on one fresh database, Django's ``migrate`` on another, the
    ``migrate`` override on a third.

    Both ``migrate`` run at the same time as the first ``safemigrate`` (three processes,
    three databases) to keep the module's wall time down.
    """
    with ExitStack() as stack:
        governed = stack.enter_context(fresh_database("rh"))
        reference = stack.enter_context(fresh_database("rh"))
        overridden = stack.enter_context(fresh_database("rh"))
        reference_process = start_command(
            ["migrate", "--noinput"], command_env(reference, module=DJANGO_ONLY)
        )
        stack.callback(reference_process.kill)
        override_process = start_command(
            ["migrate", "--noinput"], command_env(overridden, module=GOVERNED)
        )
        stack.callback(override_process.kill)
        env = command_env(governed, module=GOVERNED)
        first = run_command(["safemigrate"], env, expect=None, timeout=TIMEOUT)
        out, err = reference_process.communicate(timeout=TIMEOUT)
        reference_migrate = Result(out, err, reference_process.returncode, 0.0)
        out, err = override_process.communicate(timeout=TIMEOUT)
        override_migrate = Result(out, err, override_process.returncode, 0.0)
        after_first = recorded(governed)
        second = run_command(["safemigrate"], env, expect=None, timeout=TIMEOUT)
        yield Histories(
            governed=governed,
            reference=reference,
            overridden=overridden,
            first=first,
            second=second,
            reference_migrate=reference_migrate,
            override_migrate=override_migrate,
            recorded_after_first=after_first,
            recorded_after_second=recorded(governed),
        )


def test_safemigrate_applies_the_whole_history_to_a_fresh_database(histories, expected_plan):
    first = histories.first
    assert first.code == 0, first.output[-4000:]
    assert_no_traceback(first)
    applied_now = re.findall(r"^  Applying (\S+)\.\.\. OK$", first.out, re.M)
    assert sorted(applied_now) == sorted(expected_plan)
    # Django's migrate on the other database recorded the same history (this app's own
    # migrations aside), squashed migrations and their replaced ones alike.
    assert histories.reference_migrate.code == 0, histories.reference_migrate.output[-4000:]
    assert {
        row for row in histories.recorded_after_first if row[0] != "django_safemigrate"
    } == recorded(histories.reference)
    # The ledger: one applied run, one applied record per migration of the plan.
    assert query(
        histories.governed,
        "SELECT command, outcome, exit_code FROM django_safemigrate_run ORDER BY id LIMIT 1",
    ) == [("safemigrate", "applied", 0)]
    records = query(
        histories.governed,
        "SELECT app_label || '.' || name FROM django_safemigrate_migrationrecord "
        "WHERE outcome = 'applied'",
    )
    assert sorted(name for (name,) in records) == sorted(expected_plan)


def test_safemigrate_again_has_nothing_to_do(histories):
    second = histories.second
    assert second.code == 0, second.output[-4000:]
    assert_no_traceback(second)
    assert "SM903" not in second.output
    assert "edited" not in second.output
    assert "No migrations to apply." in second.out
    assert "Applying " not in second.out
    assert histories.recorded_after_second == histories.recorded_after_first
    assert query(
        histories.governed,
        "SELECT outcome, exit_code FROM django_safemigrate_run ORDER BY id DESC LIMIT 1",
    ) == [("nothing_to_do", 0)]


def test_schema_is_the_one_djangos_migrate_builds(histories):
    assert histories.first.code == 0, histories.first.output[-4000:]
    assert histories.reference_migrate.code == 0, histories.reference_migrate.output[-4000:]
    governed = schema_of(histories.governed, exclude_prefixes=OWN_OBJECTS)
    reference = schema_of(histories.reference, exclude_prefixes=OWN_OBJECTS)
    assert len(reference.table_names()) > 100
    assert len(reference.constraints) > 300
    differences = schema_differences(governed, reference)
    assert differences == [], "\n".join(differences[:50])
    # This app's tables are the only ones the governed database has in addition.
    everything = schema_of(histories.governed).table_names()
    own = {name for name in everything if name.startswith("public.django_safemigrate_")}
    assert own
    assert everything - reference.table_names() == own


def test_the_migrate_override_builds_djangos_schema(histories):
    assert histories.override_migrate.code == 0, histories.override_migrate.output[-4000:]
    assert_no_traceback(histories.override_migrate)
    assert histories.reference_migrate.code == 0, histories.reference_migrate.output[-4000:]
    assert {row for row in recorded(histories.overridden) if row[0] != "django_safemigrate"} == (
        recorded(histories.reference)
    )
    overridden = schema_of(histories.overridden, exclude_prefixes=OWN_OBJECTS)
    reference = schema_of(histories.reference, exclude_prefixes=OWN_OBJECTS)
    assert len(reference.table_names()) > 100
    differences = schema_differences(overridden, reference)
    assert differences == [], "\n".join(differences[:50])
    everything = schema_of(histories.overridden).table_names()
    own = {name for name in everything if name.startswith("public.django_safemigrate_")}
    assert own
    assert everything - reference.table_names() == own


def findings_by_code(document: dict[str, Any]) -> collections.Counter[str]:
    counts: collections.Counter[str] = collections.Counter()
    for migration in document["migrations"]:
        counts.update(finding["code"] for finding in migration["findings"])
    counts.update(problem["code"] for problem in document["problems"])
    return counts


def text_findings_by_code(text: str) -> collections.Counter[str]:
    """``path:line: CODE [severity] message`` lines (problems have no line)."""
    return collections.Counter(re.findall(r"^\S+?:(?:\d+:)? (SM\d{3}) \[\w+\]", text, re.M))


@dataclasses.dataclass(frozen=True)
class Checked:
    text: Result
    as_json: Result
    document: dict[str, Any]


def check_all(database: str) -> Checked:
    env = command_env(database, module=GOVERNED)
    text = run_command(["checkmigrations", "--all"], env, expect=None, timeout=TIMEOUT)
    as_json = run_command(
        ["checkmigrations", "--all", "--format", "json"], env, expect=None, timeout=TIMEOUT
    )
    return Checked(text, as_json, json.loads(as_json.out) if as_json.out.strip() else {})


def assert_documented(checked: Checked) -> None:
    for result in (checked.text, checked.as_json):
        assert_no_traceback(result)
        assert result.code in (0, 1), result.output[-4000:]
    assert checked.document["schema_version"] == 1, checked.as_json.output[-4000:]


@pytest.fixture(scope="module")
def fresh_check(empty_database: str) -> Checked:
    return check_all(empty_database)


@pytest.fixture(scope="module")
def migrated_check(histories: Histories) -> Checked:
    return check_all(histories.governed)


def test_checkmigrations_all_on_a_fresh_database(fresh_check, empty_database, expected_plan):
    assert_documented(fresh_check)
    document = fresh_check.document
    assert document["database"]["vendor"] == "postgresql"
    assert sorted(f"{m['app_label']}.{m['name']}" for m in document["migrations"]) == sorted(
        expected_plan
    )
    summary = document["summary"]
    assert summary["migrations"] == len(expected_plan)
    assert summary["safe"] + summary["risky"] + summary["destructive"] == len(expected_plan)
    # Nothing is applied here, so nothing can have been edited.
    assert document["problems"] == []
    # Exit 1 exactly when something is at or above the default --fail-on.
    expected_code = 1 if summary["blocking"] else 0
    assert (fresh_check.text.code, fresh_check.as_json.code) == (expected_code, expected_code)
    # Both formats report the same findings.
    assert text_findings_by_code(fresh_check.text.out) == findings_by_code(document)
    assert f"{len(expected_plan)} migration(s) checked" in fresh_check.text.out
    # Analysis changes nothing.
    assert relation_count(empty_database) == 0


def test_checkmigrations_all_on_the_migrated_database_sees_no_edit(histories, migrated_check):
    assert histories.first.code == 0, histories.first.output[-4000:]
    assert_documented(migrated_check)
    document = migrated_check.document
    assert [p for p in document["problems"] if p["code"] == "SM903"] == []
    assert all(m["applied"] for m in document["migrations"])
    assert text_findings_by_code(migrated_check.text.out) == findings_by_code(document)


def finding_keys(document: dict[str, Any]) -> collections.Counter[tuple[str, str, str, int]]:
    return collections.Counter(
        (m["app_label"], m["name"], f["code"], f["operation_index"])
        for m in document["migrations"]
        for f in m["findings"]
    )


def test_checkmigrations_finds_the_same_whatever_the_database_holds(fresh_check, migrated_check):
    """The same files, judged on an empty database and on one where they are all applied.

    Severities may differ (table sizes are facts of the database), the findings may not:
    the SQL judged is the SQL the files produce, whatever introspection finds.
    """
    assert_documented(fresh_check)
    assert_documented(migrated_check)
    on_empty = finding_keys(fresh_check.document)
    on_migrated = finding_keys(migrated_check.document)
    only_migrated = sorted((on_migrated - on_empty).elements())
    only_empty = sorted((on_empty - on_migrated).elements())
    assert (only_migrated, only_empty) == ([], []), (
        f"only on the migrated database: {only_migrated}; only on the empty one: {only_empty}"
    )


def test_plan_on_a_fresh_database_changes_nothing(empty_database, expected_plan):
    env = command_env(empty_database, module=GOVERNED)
    plan = run_command(["safemigrate", "--plan"], env, expect=0, timeout=TIMEOUT)
    assert_no_traceback(plan)
    # A database with nothing applied is not gated: the run would apply everything, and
    # --plan says so (a run without review is recorded as such).
    assert "Without governance: this run would apply" in plan.out
    assert "a new database is not gated" in plan.out, plan.out[:2000]
    listed = re.findall(r"^([a-z_0-9]+\.[0-9]\w*)$", plan.out, re.M)
    assert sorted(listed) == sorted(expected_plan)
    assert relation_count(empty_database) == 0


def test_plan_on_the_migrated_database_agrees_with_the_run(histories):
    """``--plan`` returns the code the run returns: here, nothing to do."""
    env = command_env(histories.governed, module=GOVERNED)
    plan = run_command(["safemigrate", "--plan"], env, expect=None, timeout=TIMEOUT)
    assert_no_traceback(plan)
    assert plan.code == histories.second.code, (
        f"--plan exits {plan.code}, the run exited {histories.second.code}\n"
        f"plan:\n{plan.output[-2000:]}\nrun:\n{histories.second.output[-2000:]}"
    )
    assert plan.code == 0, plan.output[-4000:]
    assert "No planned migration operations." in plan.out
    assert recorded(histories.governed) == histories.recorded_after_second
