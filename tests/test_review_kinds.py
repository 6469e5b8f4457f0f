"""Review policy by kind: ``REVIEW`` can ask for reviews of what breaks the old code or
blocks traffic, not only of what is destructive."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from django_safemigrate.analysis.registry import rules
from django_safemigrate.conf import InvalidSettings, parse_settings
from django_safemigrate.enums import Kind, Phase, ReviewState, Risk, Verdict
from django_safemigrate.governance.gate import GateItem, GatePolicy, decide, review_reason
from tests.helpers import applied, command_env, copy_scenario, fresh_database, run_command

APP = "firstdeploy"


def test_review_accepts_risks_and_kinds() -> None:
    settings = parse_settings({"REVIEW": ["destructive", "breaks-old-code"]}, {"default": {}})
    assert settings.review is Risk.DESTRUCTIVE
    assert settings.review_kinds == {Kind.BREAKS_OLD_CODE}

    only_kinds = parse_settings({"REVIEW": ["blocks-traffic"]}, {"default": {}})
    assert only_kinds.review is None
    assert only_kinds.review_kinds == {Kind.BLOCKS_TRAFFIC}

    assert parse_settings({"REVIEW": "risky"}, {"default": {}}).review_kinds == frozenset()


@pytest.mark.parametrize("value", [[], ["breaks-old-code", "slow"], [1], {"a": 1}, 3])
def test_review_refuses_what_it_does_not_know(value: object) -> None:
    with pytest.raises(InvalidSettings) as caught:
        parse_settings({"REVIEW": value}, {"default": {}})
    problem = caught.value.problems[0]
    assert problem.check_id == "safemigrate.E015"
    assert "'breaks-old-code'" in problem.message


def test_every_migration_rule_says_what_it_risks() -> None:
    for code, rule in rules().items():
        if code.startswith("SM9"):
            assert rule.kinds == ()
        else:
            assert rule.kinds, code


def _item(risk: Risk, kinds: set[Kind], *, governed: bool = True) -> GateItem:
    return GateItem(
        ("shop", "0002_x"),
        "sha256:1",
        risk,
        Phase.PRE_DEPLOY,
        kinds=frozenset(kinds),
        governed=governed,
    )


def test_the_gate_asks_reviews_by_kind() -> None:
    policy = GatePolicy(review_at=Risk.DESTRUCTIVE, review_kinds=frozenset({Kind.BREAKS_OLD_CODE}))
    breaking = decide([_item(Risk.RISKY, {Kind.BREAKS_OLD_CODE})], policy).decisions[0]
    assert breaking.verdict is Verdict.BLOCKED
    assert breaking.review is ReviewState.PENDING
    assert breaking.reasons == ("needs a review (risky: breaks old code) and has none",)

    blocking = decide([_item(Risk.RISKY, {Kind.BLOCKS_TRAFFIC})], policy).decisions[0]
    assert blocking.verdict is Verdict.RUN
    assert not blocking.review_required

    # An installed package's migration is out of scope whatever it is.
    package = decide(
        [_item(Risk.DESTRUCTIVE, {Kind.LOSES_DATA}, governed=False)], policy
    ).decisions[0]
    assert package.verdict is Verdict.RUN
    assert not package.review_required


def test_review_reason_names_the_risk_or_the_kinds() -> None:
    both = frozenset({Kind.BREAKS_OLD_CODE, Kind.BLOCKS_TRAFFIC})
    assert review_reason(Risk.DESTRUCTIVE, set(), Risk.DESTRUCTIVE) == "destructive"
    assert (
        review_reason(Risk.RISKY, {Kind.BLOCKS_TRAFFIC, Kind.BREAKS_OLD_CODE}, None, both)
        == "risky: blocks traffic, breaks old code"
    )
    assert review_reason(Risk.RISKY, {Kind.MAY_FAIL}, Risk.DESTRUCTIVE, both) is None


@pytest.fixture
def database() -> Iterator[str]:
    with fresh_database("sm_kinds") as name:
        yield name


@pytest.mark.django_db(transaction=True)
def test_a_deploy_stops_on_a_migration_that_breaks_old_code(database: str, tmp_path: Path) -> None:
    copy_scenario(APP, tmp_path)
    # Without online execution, which would keep the column's database default and so
    # answer SM205 (the finding is then reported, not counted).
    policy = {"REVIEW": ["destructive", "breaks-old-code"], "ONLINE": False}
    env = command_env(database, apps=[APP], pythonpath=[tmp_path], settings=policy)
    run_command(["safemigrate", APP, "0002"], env, expect=0)  # the first deploy

    # 0003 adds a NOT NULL column with a Python default only (SM205, risky).
    check = run_command(["checkmigrations", APP, "0003", "--format", "json"], env, expect=1)
    migration = json.loads(check.out)["migrations"][0]
    assert migration["review"] == {"required": True, "status": "pending"}
    assert [f["kinds"] for f in migration["findings"] if f["code"] == "SM205"] == [
        ["breaks-old-code"]
    ]

    result = run_command(["safemigrate", APP, "0003"], env, expect=3)
    assert "firstdeploy.0003_item_code needs a review (risky: breaks old code)" in result.err
    assert (APP, "0003_item_code") not in applied(database, APP)

    # Under the default policy (destructive only) the same migration runs.
    default = command_env(database, apps=[APP], pythonpath=[tmp_path], settings={"ONLINE": False})
    run_command(["safemigrate", APP, "0003"], default, expect=0)
    assert (APP, "0003_item_code") in applied(database, APP)
