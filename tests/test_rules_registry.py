"""Every rule is documented, tested, and listed in the generated reference page."""

from __future__ import annotations

from pathlib import Path

import pytest

from django_safemigrate.analysis.docs import render_markdown
from django_safemigrate.analysis.registry import rules

ROOT = Path(__file__).resolve().parent.parent
RULE_TESTS = Path(__file__).resolve().parent / "rules"


def test_rules_reference_is_up_to_date():
    committed = (ROOT / "docs" / "rules.md").read_text(encoding="utf-8")
    assert committed == render_markdown(), (
        "docs/rules.md is stale: run python -m django_safemigrate.analysis.docs docs/rules.md"
    )


@pytest.mark.parametrize("code", sorted(rules()))
def test_every_rule_has_documentation_and_a_hint_of_what_to_do(code):
    rule = rules()[code]
    assert len(rule.documentation) > 200
    assert rule.summary.endswith(".")


@pytest.mark.parametrize(
    "code", sorted(code for code, rule in rules().items() if not code.startswith("SM9"))
)
def test_every_operation_rule_has_its_own_test_module(code):
    rule = rules()[code]
    module = RULE_TESTS / f"test_{code.lower()}_{rule.name.replace('-', '_')}.py"
    assert module.exists(), f"{code} has no test module {module.name}"
    assert rule.statement_checks or rule.operation_checks or rule.migration_checks


@pytest.mark.parametrize("code", sorted(code for code in rules() if code.startswith("SM9")))
def test_project_problems_are_tested_end_to_end(code):
    text = (Path(__file__).resolve().parent / "test_checkmigrations.py").read_text()
    assert code in text
