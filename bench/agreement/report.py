"""The markdown: agreement counts per corpus and every disagreement with its class."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from agreement.classification import CLASSES, Comparison, Entry, Outcome
from agreement.vocabulary import describe_ours


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def summary_table(corpora: Sequence[tuple[str, Sequence[Comparison], Outcome]]) -> list[str]:
    lines = [
        "| corpus | cases | agree | disagree | our error | their error | different concern "
        "| unclassified |",
        "|---|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for name, comparisons, outcome in corpora:
        agree = sum(c.agrees for c in comparisons)
        by_class = Counter(entry.klass for _, entry in outcome.classified)
        lines.append(
            f"| {name} | {len(comparisons)} | {agree} | {len(comparisons) - agree} | "
            + " | ".join(str(by_class[k]) for k in CLASSES)
            + f" | {len(outcome.unclassified)} |"
        )
    return lines


def by_assertion_table(comparisons: Sequence[Comparison]) -> list[str]:
    """Agreement by what the peer asserted (flags X / passes)."""
    rows: dict[str, list[int]] = {}
    for comparison in comparisons:
        row = rows.setdefault(comparison.they, [0, 0])
        row[0 if comparison.agrees else 1] += 1
    lines = ["| they assert | cases | agree | disagree |", "|---|--:|--:|--:|"]
    for they, (agree, disagree) in sorted(rows.items()):
        lines.append(f"| {_cell(they)} | {agree + disagree} | {agree} | {disagree} |")
    return lines


def disagreement_lines(outcome: Outcome) -> list[str]:
    """Every classified disagreement: one row each, whole-rule entries one row per rule."""
    lines = [
        "| case | they assert | we say | class | why |",
        "|---|---|---|---|---|",
    ]
    grouped: dict[int, tuple[Entry, list[Comparison]]] = {}
    for comparison, entry in outcome.classified:
        if entry.key is not None:
            why = entry.why + (f" Fix: {entry.fix}" if entry.fix else "")
            why += (
                f" (verified by `bench/agreement/verify/{entry.verified_by}`)"
                if entry.verified_by
                else ""
            )
            lines.append(
                f"| `{comparison.key}` | {_cell(comparison.peer.said)}: {_cell(comparison.they)} "
                f"| {_cell(describe_ours(comparison.ours))} | {entry.klass} | {_cell(why)} |"
            )
        else:
            grouped.setdefault(id(entry), (entry, []))[1].append(comparison)
    for entry, members in grouped.values():
        keys = ", ".join(f"`{c.key.split('/', 1)[1]}`" for c in members)
        lines.append(
            f"| rule `{entry.rule}` ({len(members)}: {keys}) | {_cell(entry.they)} | "
            f"(any) | {entry.klass} | {_cell(entry.why)} |"
        )
    for comparison in outcome.unclassified:
        lines.append(
            f"| `{comparison.key}` | {_cell(comparison.peer.said)}: {_cell(comparison.they)} "
            f"| {_cell(describe_ours(comparison.ours))} | **unclassified** | |"
        )
    return lines
