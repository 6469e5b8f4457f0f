"""``checkmigrations --format sarif``: the findings as a SARIF 2.1.0 log, for code scanning.

One run of one tool. Every rule is described in ``tool.driver.rules`` (its summary, its
documentation and its default level); each finding is a result on the migration file and
the line of its operation, with a stable fingerprint so that code scanning recognises it
from one commit to the next. A finding on a migration outside the working directory (an
installed package's) has no file to point at in the repository: it gets a logical
location (``app_label.migration``) instead. Acknowledged findings are results with an
in-source suppression that carries the reason.

https://docs.oasis-open.org/sarif/sarif/v2.1.0/sarif-v2.1.0.html
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

from django_safemigrate import __version__
from django_safemigrate.analysis.findings import Finding, MigrationReport, Problem
from django_safemigrate.analysis.registry import Rule, rules
from django_safemigrate.enums import Risk
from django_safemigrate.reporting import Result, repository_path, status_of

SCHEMA = (
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
)
TOOL = "django_safemigrate"
_LEVELS = {Risk.DESTRUCTIVE: "error", Risk.RISKY: "warning", Risk.SAFE: "note"}


def render_sarif(result: Result) -> str:
    known = rules()
    codes = sorted({*known, *(p.code for p in result.problems)})
    index = {code: i for i, code in enumerate(codes)}
    failing = {id(f) for f in result.blocking()}
    results: list[dict[str, Any]] = []
    for report in result.reports:
        for finding in report.findings:
            results.append(_finding(report, finding, index, failing=id(finding) in failing))
    for problem in result.problems:
        failing_problem = any(problem is p for p in result.failing_problems())
        results.append(_problem(problem, index, failing=failing_problem))
    log = {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": TOOL,
                        "version": __version__,
                        "rules": [_rule(code, known.get(code)) for code in codes],
                    }
                },
                "originalUriBaseIds": {"SRCROOT": {"uri": _directory_uri(os.getcwd())}},
                "invocations": [{"executionSuccessful": True}],
                "results": results,
            }
        ],
    }
    return json.dumps(log, indent=2)


def _rule(code: str, rule: Rule | None) -> dict[str, Any]:
    if rule is None:  # a project-level check without a rule module
        return {"id": code, "shortDescription": {"text": code}}
    return {
        "id": rule.code,
        "name": rule.name,
        "shortDescription": {"text": rule.summary},
        "fullDescription": {"text": rule.documentation},
        "help": {"text": rule.documentation},
        "defaultConfiguration": {"level": _LEVELS[rule.severity]},
        "properties": {"severity": rule.severity.value},
    }


def _finding(
    report: MigrationReport, finding: Finding, index: dict[str, int], *, failing: bool
) -> dict[str, Any]:
    status = status_of(finding, report)
    text = f"{finding.message}\nHint: {finding.hint}" + (f"\n({status})" if status else "")
    entry: dict[str, Any] = {
        "ruleId": finding.code,
        "ruleIndex": index[finding.code],
        # What fails the run is an error; what is reported and does not fail it, a warning
        # (a note for safe findings), so code scanning ranks them as the command does.
        "level": "error" if failing else ("note" if finding.severity is Risk.SAFE else "warning"),
        "message": {"text": text},
        "locations": [_location(report.path, finding.line, report.app_label, report.name)],
        "partialFingerprints": {
            "safemigrate/v1": _fingerprint(
                report.app_label, report.name, finding.code, finding.operation_index, finding.sql
            )
        },
        "properties": {
            "severity": finding.severity.value,
            "kinds": [kind.value for kind in finding.kinds],
            "blocking": failing,
            "package": report.package,
            "table": finding.table,
            "lock": finding.lock.value if finding.lock else None,
            "operation": finding.operation,
            "operation_index": finding.operation_index,
        },
    }
    if finding.acknowledged is not None:
        entry["suppressions"] = [{"kind": "inSource", "justification": finding.acknowledged}]
    return entry


def _problem(problem: Problem, index: dict[str, int], *, failing: bool) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "ruleId": problem.code,
        "ruleIndex": index[problem.code],
        "level": "error" if failing else "warning",
        "message": {"text": problem.text},
        "partialFingerprints": {
            "safemigrate/v1": _fingerprint(
                problem.app_label or "", problem.name or "", problem.code, None, problem.message
            )
        },
    }
    if problem.path or problem.app_label:
        entry["locations"] = [
            _location(problem.path, problem.line, problem.app_label, problem.name)
        ]
    return entry


def _location(
    path: str | None, line: int | None, app_label: str | None, name: str | None
) -> dict[str, Any]:
    location: dict[str, Any] = {}
    relative = repository_path(path)
    if relative is not None:
        physical: dict[str, Any] = {"artifactLocation": {"uri": relative, "uriBaseId": "SRCROOT"}}
        if line:
            physical["region"] = {"startLine": line}
        location["physicalLocation"] = physical
    if app_label:
        location["logicalLocations"] = [
            {"fullyQualifiedName": f"{app_label}.{name}" if name else app_label, "kind": "module"}
        ]
    return location


def _directory_uri(path: str) -> str:
    uri = "file://" + os.path.abspath(path).replace(os.sep, "/")
    return uri if uri.endswith("/") else uri + "/"


def _fingerprint(
    app_label: str, name: str, code: str, operation: int | None, detail: str | None
) -> str:
    key = "\0".join([app_label, name, code, str(operation), detail or ""])
    return hashlib.sha256(key.encode()).hexdigest()[:32]
