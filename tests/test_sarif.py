"""``checkmigrations --format sarif``: a valid SARIF 2.1.0 log that code scanning can use."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from tests.test_checkmigrations import check, scenarios  # noqa: F401 - the fixture

#: Nothing here depends on the Django version: run once, in CI's first pass.
pytestmark = pytest.mark.once

SCHEMA = json.loads((Path(__file__).parent / "data" / "sarif-schema-2.1.0.json").read_text())


def sarif(scenarios, *args, expect, apps=("risky",)):  # noqa: F811
    result = check(scenarios, *args, "--format", "sarif", apps=apps, expect=expect)
    log = json.loads(result.out)
    jsonschema.Draft4Validator(SCHEMA).validate(log)
    return log, result


def test_the_log_validates_against_the_sarif_schema(scenarios):  # noqa: F811
    log, result = sarif(scenarios, "risky", "--all", "--offline", expect=1)
    assert log["version"] == "2.1.0"
    run = log["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    assert {"SM101", "SM201", "SM205"} <= {r["id"] for r in rules}
    by_rule = {r["ruleId"]: r for r in run["results"]}
    index = by_rule["SM101"]
    assert rules[index["ruleIndex"]]["id"] == "SM101"
    location = index["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"] == "risky/migrations/0002_item_name_index.py"
    assert location["region"] == {"startLine": 8}
    assert "Hint: Build it with" in index["message"]["text"]
    assert index["level"] == "error"
    assert by_rule["SM201"]["level"] == "error"
    # The stderr line speaks of the report where it is.
    assert "in the report on standard output" in result.err


def test_levels_follow_the_fail_on_policy(scenarios):  # noqa: F811
    log, _ = sarif(scenarios, "risky", "--all", "--offline", "--fail-on", "never", expect=0)
    levels = {r["ruleId"]: r["level"] for r in log["runs"][0]["results"]}
    assert levels["SM101"] == "warning"
    assert levels["SM201"] == "warning"


def test_fingerprints_are_stable_and_distinct(scenarios):  # noqa: F811
    first, _ = sarif(scenarios, "risky", "--all", "--offline", expect=1)
    second, _ = sarif(scenarios, "risky", "--all", "--offline", expect=1)
    prints = [r["partialFingerprints"] for r in first["runs"][0]["results"]]
    assert prints == [r["partialFingerprints"] for r in second["runs"][0]["results"]]
    assert len({p["safemigrate/v1"] for p in prints}) == len(prints)


def test_acknowledged_findings_are_suppressed_with_their_reason(scenarios):  # noqa: F811
    log, _ = sarif(scenarios, "acked", "--all", "--offline", apps=("acked",), expect=None)
    acked = [r for r in log["runs"][0]["results"] if "suppressions" in r]
    assert acked
    assert acked[0]["suppressions"][0]["kind"] == "inSource"
    assert acked[0]["suppressions"][0]["justification"]


def test_an_installed_packages_migration_has_a_logical_location_only(scenarios):  # noqa: F811
    # django_safemigrate's own migrations live outside the project's working directory.
    log, _ = sarif(scenarios, "--all", "--offline", "--fail-on", "never", expect=0)
    outside = [
        r
        for r in log["runs"][0]["results"]
        if r["locations"][0]["logicalLocations"][0]["fullyQualifiedName"].startswith(
            "django_safemigrate."
        )
    ]
    assert outside
    assert all("physicalLocation" not in r["locations"][0] for r in outside)


@pytest.mark.parametrize("fmt", ["github", "sarif"])
def test_no_annotation_points_outside_the_repository(scenarios, fmt):  # noqa: F811
    result = check(scenarios, "--all", "--offline", "--fail-on", "never", "--format", fmt, expect=0)
    assert "../" not in result.out.replace("file:///", "")
