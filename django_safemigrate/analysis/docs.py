"""The rules reference page, generated from the registry (``docs/rules.md``).

``python -m django_safemigrate.analysis.docs docs/rules.md`` rewrites it; a test
fails when the committed page differs from what the registry says.
"""

from __future__ import annotations

import sys
from pathlib import Path

from django_safemigrate.analysis.registry import Rule, rules

FAMILIES = {
    "1": "Locks and rewrites",
    "2": "Backward compatibility and data loss",
    "3": "Transactions and atomicity",
    "4": "Data migrations and reversibility",
    "9": "Project-level problems",
}


def render_markdown() -> str:
    all_rules = list(rules().values())
    out = [
        "# Rules",
        "",
        "Generated from the rule modules by "
        "`python -m django_safemigrate.analysis.docs docs/rules.md`; do not edit by hand.",
        "`python manage.py checkmigrations --explain CODE` prints the same text.",
        "",
        "| code | rule | default severity | puts at risk | summary |",
        "| --- | --- | --- | --- | --- |",
    ]
    out += [
        f"| [{r.code}](#{r.code.lower()}) | `{r.name}` | {r.severity.value} | {_kinds(r)} "
        f"| {r.summary} |"
        for r in all_rules
    ]
    for family, title in FAMILIES.items():
        members = [r for r in all_rules if r.code[2] == family]
        if not members:
            continue
        out += ["", f"## {title}"]
        for rule in members:
            out += ["", *_section(rule)]
    return "\n".join(out) + "\n"


def _kinds(rule: Rule) -> str:
    """The rule's kinds (``REVIEW`` can ask for reviews by kind); ``-`` for SM9xx."""
    return ", ".join(f"`{kind.value}`" for kind in rule.kinds) or "-"


def _section(rule: Rule) -> list[str]:
    puts = f", puts at risk: {_kinds(rule)}" if rule.kinds else ""
    return [
        f"### {rule.code}",
        "",
        f"`{rule.name}`, default severity **{rule.severity.value}**{puts}.",
        "",
        rule.documentation,
    ]


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m django_safemigrate.analysis.docs PATH", file=sys.stderr)
        return 2
    Path(argv[0]).write_text(render_markdown(), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
