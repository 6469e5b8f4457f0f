"""Render analysis results: text for people, JSON for tools, GitHub annotations for PRs.

Renderers are pure: they take reports and return strings. The JSON follows
schema version 1 (README, "JSON output"); keys may be added, never renamed.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

from django_safemigrate.analysis.findings import Finding, MigrationReport, Problem
from django_safemigrate.enums import Risk

SCHEMA_VERSION = 1


@dataclasses.dataclass(frozen=True)
class DatabaseInfo:
    alias: str
    vendor: str
    server_version: str


@dataclasses.dataclass(frozen=True)
class Result:
    """Everything one ``checkmigrations`` run found."""

    reports: tuple[MigrationReport, ...]
    problems: tuple[Problem, ...]
    database: DatabaseInfo | None
    fail_on: Risk | None
    #: ``(app_label, name)`` → (review required, review state) per reported migration.
    reviews: Mapping[tuple[str, str], tuple[bool, str]] = dataclasses.field(default_factory=dict)

    def blocking(self) -> list[Finding]:
        """Counted findings at or above ``fail_on``, in the migrations in scope."""
        if self.fail_on is None:
            return []
        return [
            f
            for report in self.reports
            if report.governed
            for f in report.counted()
            if f.severity.rank >= self.fail_on.rank
        ]

    def failing_problems(self) -> list[Problem]:
        """The problems that fail the run: none under ``--fail-on never``, and none about an
        installed package left out of scope."""
        if self.fail_on is None:
            return []
        return [p for p in self.problems if p.package is None]

    @property
    def failed(self) -> bool:
        return bool(self.blocking()) or bool(self.failing_problems())


def render_json(result: Result) -> str:
    counts = {risk: 0 for risk in Risk}
    migrations = []
    # One meaning of ``blocking``: the finding fails this run (its --fail-on); the summary
    # counts exactly those.
    failing = {id(f) for f in result.blocking()}
    for report in result.reports:
        counts[report.risk] += 1
        migrations.append(
            {
                "app_label": report.app_label,
                "name": report.name,
                "path": report.path,
                "checksum": report.checksum,
                "applied": report.applied,
                "atomic": report.atomic,
                "phase": report.phase.value,
                "risk": report.risk.value,
                "package": report.package,
                "governed": report.governed,
                "review": _review_json(result, report),
                "findings": [
                    {**f.as_json(), "blocking": id(f) in failing} for f in report.findings
                ],
            }
        )
    data: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "database": dataclasses.asdict(result.database) if result.database else None,
        "migrations": migrations,
        "problems": [
            {**p.as_json(), "blocking": any(p is q for q in result.failing_problems())}
            for p in result.problems
        ],
        "summary": {
            "migrations": len(result.reports),
            "safe": counts[Risk.SAFE],
            "risky": counts[Risk.RISKY],
            "destructive": counts[Risk.DESTRUCTIVE],
            "blocking": len(result.blocking()),
            "problems": len(result.problems),
            "blocking_problems": len(result.failing_problems()),
        },
    }
    return json.dumps(data, indent=2, sort_keys=False)


def _review_json(result: Result, report: MigrationReport) -> dict[str, Any]:
    required, status = result.reviews.get((report.app_label, report.name), (False, "not_required"))
    return {"required": required, "status": status}


def _where(report: MigrationReport, finding: Finding) -> str:
    path = report.path or f"{report.app_label}/migrations/{report.name}.py"
    return f"{path}:{finding.line}" if finding.line else path


def status_of(finding: Finding, report: MigrationReport | None = None) -> str:
    """Why a finding does not count, in words (``""`` when it counts)."""
    if finding.acknowledged is not None:
        return f"acknowledged: {finding.acknowledged}"
    if report is not None and not report.governed:
        return out_of_scope(report.package)
    if finding.online is not None:
        return "not blocking: safemigrate runs it online"
    if not finding.blocking:
        return "not blocking: new or small table"
    return ""


def out_of_scope(package: str | None) -> str:
    return (
        f"installed package {package}: shown, not failing; SAFEMIGRATE['GOVERN_PACKAGES'] "
        "brings it into scope"
    )


def render_text(result: Result, *, verbose: bool = False) -> str:
    lines: list[str] = []
    for report in result.reports:
        for f in report.findings:
            table = ""
            if f.table:
                size = ""
                if f.table_rows is not None:
                    size = f", ~{f.table_rows:,} rows"
                table = f" [table {f.table}{size}{', ' + f.lock.value if f.lock else ''}]"
            status = status_of(f, report)
            suffix = f" ({status})" if status else ""
            lines.append(
                f"{_where(report, f)}: {f.code} [{f.severity.value}] {f.message}{table}{suffix}"
            )
            lines.append(f"    hint: {f.hint}")
            if verbose and f.sql:
                lines.append(f"    sql: {f.sql}")
    for p in result.problems:
        where = f"{p.path}:{p.line}: " if p.path and p.line else (f"{p.path}: " if p.path else "")
        suffix = f" ({out_of_scope(p.package)})" if p.package else ""
        lines.append(f"{where}{p.code} [problem] {p.text}{suffix}")
    lines.append(_summary_line(result))
    return "\n".join(lines)


def _summary_line(result: Result) -> str:
    counts = {risk: sum(r.risk is risk for r in result.reports) for risk in Risk}
    blocking = len(result.blocking())
    verdict = "fails" if result.failed else "passes"
    packages = {r.package for r in result.reports if not r.governed}
    packages |= {p.package for p in result.problems if p.package}
    scope = (
        f" (including {len(packages)} installed package(s), shown but not failing)"
        if packages
        else ""
    )
    policy = f"--fail-on {result.fail_on.value}" if result.fail_on else "--fail-on never"
    return (
        f"{len(result.reports)} migration(s) checked{scope}: {counts[Risk.SAFE]} safe, "
        f"{counts[Risk.RISKY]} risky, {counts[Risk.DESTRUCTIVE]} destructive; "
        f"{blocking} blocking finding(s), {len(result.problems)} problem(s); "
        f"{verdict} {policy}."
    )


def repository_path(path: str | None) -> str | None:
    """``path`` relative to the working directory, with forward slashes; ``None`` for a file
    outside it (an installed package's migration), which no repository file stands for."""
    if not path:
        return None
    relative = os.path.relpath(os.path.abspath(path))
    if relative == os.pardir or relative.startswith(os.pardir + os.sep):
        return None
    return relative.replace(os.sep, "/")


def escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def render_github(result: Result) -> str:
    """GitHub Actions workflow commands: one annotation per finding, on its line."""
    lines: list[str] = []
    blocking = {id(f) for f in result.blocking()}
    for report in result.reports:
        for f in report.findings:
            level = "error" if id(f) in blocking else "warning"
            if f.acknowledged is not None or f.severity is Risk.SAFE:
                level = "notice"
            props = []
            # An installed package's migration is not in the repository: no file to annotate.
            path = repository_path(report.path)
            if path is not None:
                props.append(f"file={escape_property(path)}")
                if f.line:
                    props.append(f"line={f.line}")
            props.append(f"title={escape_property(f'{f.code} {f.rule} [{f.severity.value}]')}")
            body = f"{f.message}\nHint: {f.hint}"
            status = status_of(f, report)
            if status:
                body += f"\n({status})"
            lines.append(f"::{level} {','.join(props)}::{escape_data(body)}")
    for p in result.problems:
        props = []
        path = repository_path(p.path)
        if path is not None:
            props.append(f"file={escape_property(path)}")
            if p.line:
                props.append(f"line={p.line}")
        props.append(f"title={escape_property(p.code)}")
        level = "warning" if p.package else "error"
        body = p.text + (f"\n({out_of_scope(p.package)})" if p.package else "")
        lines.append(f"::{level} {','.join(props)}::{escape_data(body)}")
    lines.append(_summary_line(result))
    return "\n".join(lines)


def render_rule_list(rules: Sequence[Any]) -> str:
    width = max((len(r.name) for r in rules), default=0)
    return "\n".join(
        f"{r.code}  {r.name.ljust(width)}  {r.severity.value:<11}  {r.summary}" for r in rules
    )


def render_explanation(rule: Any) -> str:
    return (
        f"{rule.code} {rule.name} (default severity: {rule.severity.value})\n\n{rule.documentation}"
    )
