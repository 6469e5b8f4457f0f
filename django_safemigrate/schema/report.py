"""``--roundtrip`` and ``--drift`` results as text, JSON (README, "Round-trip check" and
"Drift check": the keys) and GitHub workflow annotations."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from django_safemigrate.reporting import (
    SCHEMA_VERSION,
    DatabaseInfo,
    escape_data,
    escape_property,
    repository_path,
)
from django_safemigrate.schema.compare import Change, Difference
from django_safemigrate.schema.drift import DriftResult
from django_safemigrate.schema.roundtrip import (
    Applied,
    MigrationRoundTrip,
    Reapply,
    Reverse,
    RoundTripResult,
)

# -- differences -------------------------------------------------------------------------


#: A definition longer than this is cut in text reports (JSON has it whole).
_SHOWN = 160


def _shown(text: str) -> str:
    """One line (a view's definition spans several), cut to :data:`_SHOWN` characters."""
    line = " ".join(text.split())
    return line if len(line) <= _SHOWN else line[: _SHOWN - 3] + "..."


def _value(text: str) -> str:
    return repr(_shown(text)) if text else "none"


def difference_line(
    difference: Difference, where: str, expected: str, found: str, *, change_first: bool = False
) -> str:
    """``index shop_item_sku_idx on shop_item missing after reverse of shop.0003_x (…)``.

    ``where`` says when or where (``after reverse of shop.0003_x``, ``in the database``);
    ``expected`` and ``found`` name the two sides of a changed field (``before``, ``after``).
    """
    change = difference.change.value
    line = (
        f"{change} {difference.what()} {where}"
        if change_first
        else f"{difference.what()} {change} {where}"
    )
    if difference.change is Change.DIFFERENT:
        assert difference.expected is not None
        assert difference.found is not None
        changes = [
            f"{field} {_value(difference.expected[field])} {expected}, "
            f"{_value(difference.found.get(field, ''))} {found}"
            for field in difference.fields
        ]
        return f"{line}: {'; '.join(changes)}"
    side = difference.expected if difference.change is Change.MISSING else difference.found
    definition = (side or {}).get("definition") or (side or {}).get("type")
    return f"{line} ({_shown(definition)})" if definition else line


# -- round trip --------------------------------------------------------------------------


def _reverse_where(migration: MigrationRoundTrip) -> str:
    return f"after reverse of {migration.label}"


def _reapply_where(migration: MigrationRoundTrip) -> str:
    return f"after applying {migration.label} again"


def roundtrip_problem(migration: MigrationRoundTrip) -> list[str]:
    """What went wrong with one migration: a headline, then one line per difference."""
    lines: list[str] = []
    if migration.applied is Applied.FAILED:
        lines.append(
            f"applying it failed ({migration.error}); the migrations before it were still "
            "walked back"
        )
    if migration.reverse is Reverse.IRREVERSIBLE:
        lines.append(
            f"irreversible ({migration.error}); the walk back stops here, the migrations "
            "before it were not unapplied"
        )
    elif migration.reverse is Reverse.FAILED:
        lines.append(f"unapplying it failed ({migration.error}); the walk back stops here")
    elif migration.reverse is Reverse.NOT_RESTORED:
        lines.append("the reverse does not restore the schema:")
        lines += [
            "  " + difference_line(d, _reverse_where(migration), "before", "after")
            for d in migration.reverse_differences
        ]
    if migration.reapply is Reapply.FAILED:
        lines.append(f"applying it again failed ({migration.error})")
    elif migration.reapply is Reapply.DIFFERENT:
        lines.append("applying it again does not give the schema of its first apply:")
        lines += [
            "  " + difference_line(d, _reapply_where(migration), "the first time", "again")
            for d in migration.reapply_differences
        ]
    return lines


def _where(migration: MigrationRoundTrip) -> str:
    path = repository_path(migration.path)
    return f"{path}:1" if path else migration.label


def _roundtrip_summary(result: RoundTripResult) -> str:
    walked = result.migrations
    count = {state: sum(m.reverse is state for m in walked) for state in Reverse}
    failed = sum(
        m.applied is Applied.FAILED or m.reapply in (Reapply.FAILED, Reapply.DIFFERENT)
        for m in walked
    )
    restored = count[Reverse.RESTORED]
    parts = [f"{restored} reverse{'s restore' if restored != 1 else ' restores'} the schema"]
    if count[Reverse.NOT_RESTORED]:
        parts.append(
            f"{count[Reverse.NOT_RESTORED]} "
            + ("does not" if count[Reverse.NOT_RESTORED] == 1 else "do not")
        )
    if count[Reverse.IRREVERSIBLE]:
        parts.append(f"{count[Reverse.IRREVERSIBLE]} irreversible")
    if count[Reverse.FAILED]:
        parts.append(f"{count[Reverse.FAILED]} failed to unapply")
    if failed:
        parts.append(f"{failed} failed or differed when applied (again)")
    verdict = "failed" if result.failed else "passed"
    return (
        f"Round trip {verdict}: {len(walked)} migration(s) walked "
        f"({result.starting_point} applied first as the starting point); {', '.join(parts)}."
    )


def render_roundtrip_text(result: RoundTripResult, *, verbose: bool = False) -> str:
    lines: list[str] = []
    for migration in result.migrations:
        if migration.ok:
            if verbose:
                lines.append(
                    f"{migration.label}: applied {migration.applied.value}, reverse "
                    f"{migration.reverse.value}, applied again {migration.reapply.value}"
                )
            continue
        problem = roundtrip_problem(migration)
        lines.append(f"{_where(migration)}: roundtrip {migration.label}: {problem[0]}")
        lines += [f"    {line.strip()}" for line in problem[1:]]
    lines.append(_roundtrip_summary(result))
    return "\n".join(lines)


def render_roundtrip_json(result: RoundTripResult, database: DatabaseInfo | None) -> str:
    walked = result.migrations
    data: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "check": "roundtrip",
        "database": dataclasses.asdict(database) if database else None,
        "starting_point": result.starting_point,
        "migrations": [
            {
                "app_label": m.app_label,
                "name": m.name,
                "path": m.path,
                "selected": m.selected,
                "applied": m.applied.value,
                "reverse": m.reverse.value,
                "reapply": m.reapply.value,
                "ok": m.ok,
                "error": m.error,
                "reverse_differences": [d.as_json() for d in m.reverse_differences],
                "reapply_differences": [d.as_json() for d in m.reapply_differences],
            }
            for m in walked
        ],
        "summary": {
            "migrations": len(walked),
            "restored": sum(m.reverse is Reverse.RESTORED for m in walked),
            "not_restored": sum(m.reverse is Reverse.NOT_RESTORED for m in walked),
            "irreversible": sum(m.reverse is Reverse.IRREVERSIBLE for m in walked),
            "failed": sum(not m.ok for m in walked),
            "ok": not result.failed,
        },
    }
    return json.dumps(data, indent=2)


def render_roundtrip_github(result: RoundTripResult) -> str:
    lines = []
    for migration in result.migrations:
        if migration.ok:
            continue
        props = []
        path = repository_path(migration.path)
        if path is not None:
            props += [f"file={escape_property(path)}", "line=1"]
        props.append(f"title={escape_property(f'roundtrip {migration.label}')}")
        body = "\n".join(line.strip() for line in roundtrip_problem(migration))
        lines.append(f"::error {','.join(props)}::{escape_data(body)}")
    lines.append(_roundtrip_summary(result))
    return "\n".join(lines)


# -- drift -------------------------------------------------------------------------------

_DRIFT_WHERE = {
    Change.EXTRA: "in the database, which no applied migration builds",
    Change.MISSING: "from the database, which its applied migrations build",
    Change.DIFFERENT: "in the database",
}


def drift_line(difference: Difference) -> str:
    """``extra index hand_idx on shop_item in the database, which no applied migration
    builds (CREATE INDEX …)``; ``different column shop_item.price in the database: …``."""
    return difference_line(
        difference,
        _DRIFT_WHERE[difference.change],
        "from the migrations",
        "in the database",
        change_first=True,
    )


def _drift_summary(result: DriftResult) -> str:
    if not result.drifted:
        text = (
            f"No drift: {result.database} has the schema its {result.applied} applied "
            "migration(s) build"
        )
    else:
        counts = {change: sum(d.change is change for d in result.differences) for change in Change}
        text = (
            f"Drift: {result.database} differs from the schema its {result.applied} applied "
            f"migration(s) build: {counts[Change.EXTRA]} extra, {counts[Change.MISSING]} "
            f"missing, {counts[Change.DIFFERENT]} different"
        )
    if result.ignored:
        text += f" ({result.ignored} difference(s) left out by SAFEMIGRATE['DRIFT_IGNORE'])"
    return text + "."


def _unknown_line(result: DriftResult) -> str | None:
    if not result.unknown:
        return None
    names = ", ".join(".".join(key) for key in result.unknown)
    return (
        f"Note: django_migrations records {names} as applied, but no migration file stands "
        "for them; what they built is not part of the comparison."
    )


def render_drift_text(result: DriftResult) -> str:
    lines = [drift_line(d) for d in result.differences]
    unknown = _unknown_line(result)
    if unknown:
        lines.append(unknown)
    lines.append(_drift_summary(result))
    return "\n".join(lines)


def render_drift_json(result: DriftResult, database: DatabaseInfo | None) -> str:
    data: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "check": "drift",
        "database": dataclasses.asdict(database) if database else None,
        "applied_migrations": result.applied,
        "differences": [d.as_json() for d in result.differences],
        "ignored": result.ignored,
        "unknown_migrations": [".".join(key) for key in result.unknown],
        "summary": {
            "extra": sum(d.change is Change.EXTRA for d in result.differences),
            "missing": sum(d.change is Change.MISSING for d in result.differences),
            "different": sum(d.change is Change.DIFFERENT for d in result.differences),
            "drift": result.drifted,
        },
    }
    return json.dumps(data, indent=2)


def render_drift_github(result: DriftResult) -> str:
    lines = []
    for difference in result.differences:
        title = f"drift: {difference.change.value} {difference.kind} {difference.name}"
        lines.append(
            f"::error title={escape_property(title)}::{escape_data(drift_line(difference))}"
        )
    unknown = _unknown_line(result)
    if unknown:
        lines.append(f"::warning title=drift::{escape_data(unknown)}")
    lines.append(_drift_summary(result))
    return "\n".join(lines)
