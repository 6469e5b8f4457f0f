"""How well does ``checkmigrations`` judge migrations, next to the other tools?

Judges every migration of the labelled corpus (``bench/corpus``: several Django apps, each
migration labelled safe / risky / destructive by PostgreSQL semantics in
``bench/corpus/labels.toml``, the facts behind the labels checked by
``tests/test_corpus_labels.py``) with four tools in one run, and counts for each one:

- misses: labelled risky or destructive, and the tool is silent;
- false alarms: labelled safe, and the tool flags it;
- for ours, also the migrations it flags at the wrong level (risky for destructive or back).

The tools compared are benchmark tools only, not dependencies of the project; install them
into the environment that runs this script::

    pip install django-migration-linter django-safe-migrations squawk-cli

How each tool is run (all from ``bench/corpus`` with ``bench/corpus/settings.py``):

``django_safemigrate``
    ``manage.py checkmigrations --all --format json --fail-on never --offline --pg-version N``
    (N: the server's major version). A migration is flagged when its ``risk`` is risky or
    destructive. For information, the same command also runs live against an empty, freshly
    created database (no tables); that row is not the one the target is judged on.
``django-migration-linter``
    ``manage.py lintmigrations APP --no-cache`` per app, on the empty database (it renders SQL
    with ``sqlmigrate``). ``ERR`` and ``WARNING`` flag. It crashes on a migration whose
    ``sqlmigrate`` raises something other than ``ValueError``/``ProgrammingError``; the rest of
    that app is then linted one migration at a time and the crash counts as flagging (a CI job
    fails on it).
``django-safe-migrations``
    ``manage.py check_migrations APP... --format=json``. Issues of severity ``warning`` or
    ``error`` flag; ``info`` does not.
``squawk``
    ``squawk --pg-version N --reporter json`` on the ``sqlmigrate`` output of each migration,
    rendered against the real schema: a child process walks the corpus plan on the database,
    running ``sqlmigrate`` for each migration and then applying it (a migration PostgreSQL
    refuses is faked so the walk goes on). Any warning or error flags; a migration whose
    ``sqlmigrate`` fails counts as flagging. Run twice: with squawk's default rules, and
    without the rules that ask for hygiene rather than judge a lock or a rewrite
    (``SQUAWK_HYGIENE_RULES``).

The server is ``DATABASE_URL`` (a maintenance database where the user may CREATE DATABASE),
else whatever ``django_safemigrate.testing.postgres.test_database_url()`` finds or starts. The
database the script creates is dropped at the end.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres python bench/accuracy.py
    python bench/accuracy.py --write   # also rewrite BENCHMARKS.md's "Accuracy" section
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import importlib.metadata
import importlib.util
import json
import os
import platform
import re
import secrets
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    cpu_model,
    create_database,
    drop_database,
    git_revision,
    redacted,
    reproduce_command,
    reproduce_lines,
    server_major,
    server_url,
    server_version,
    tail,
    update_benchmarks,
    with_database,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
CORPUS = REPO_ROOT / "bench" / "corpus"
LABELS = CORPUS / "labels.toml"
BENCHMARKS_MD = REPO_ROOT / "BENCHMARKS.md"
RULES_DIR = REPO_ROOT / "django_safemigrate" / "analysis" / "rules"
SECTION_TITLE = "Accuracy"
INSTALL = "pip install django-migration-linter django-safe-migrations squawk-cli"
TIMEOUT = 300
UNSAFE = ("risky", "destructive")

#: Squawk rules that ask for hygiene (timeouts set, IF NOT EXISTS, preferred types) rather
#: than judge what a statement locks, rewrites or loses. Excluded in the second squawk row.
SQUAWK_HYGIENE_RULES = (
    "require-timeout-settings",
    "prefer-robust-stmts",
    "prefer-bigint-over-int",
    "prefer-bigint-over-smallint",
    "prefer-identity",
    "prefer-text-field",
    "prefer-timestamptz",
)

Key = tuple[str, str]

#: Walks the corpus plan on the database: ``sqlmigrate`` each migration, then apply it.
SQL_CHILD = r"""
import io, json, sys
import django

django.setup()
from django.core.management import call_command
from django.core.management.commands.migrate import Command as Migrate
from django.db import connection
from django.db.migrations.loader import MigrationLoader

apps = sys.argv[1:]
loader = MigrationLoader(connection)
plan, seen = [], set()
for app in apps:
    for leaf in loader.graph.leaf_nodes(app):
        for key in loader.graph.forwards_plan(leaf):
            if key not in seen:
                seen.add(key)
                plan.append(key)
for app, name in plan:
    out, sql_error, apply_error = io.StringIO(), None, None
    if app in apps:
        try:
            call_command("sqlmigrate", app, name, stdout=out)
        except Exception as exc:
            sql_error = f"{type(exc).__name__}: {exc}"
    try:
        call_command(Migrate(), app, name, verbosity=0, interactive=False)
    except Exception as exc:
        apply_error = f"{type(exc).__name__}: {exc}"
        call_command(Migrate(), app, name, fake=True, verbosity=0, interactive=False)
    if app in apps:
        print(json.dumps({"app": app, "name": name, "sql": out.getvalue(),
                          "sql_error": sql_error, "apply_error": apply_error}), flush=True)
"""


class BenchmarkError(Exception):
    """The run cannot produce a trustworthy comparison."""


@dataclasses.dataclass(frozen=True)
class Label:
    label: str
    reason: str


@dataclasses.dataclass(frozen=True)
class Verdict:
    """One tool's judgement of one migration, normalised."""

    flags: bool
    #: For ours: "safe" / "risky" / "destructive"; for the others ``None``.
    level: str | None = None
    #: What the tool said, briefly (rule codes, or the error).
    detail: str = ""
    #: The tool could not judge it (crash, sqlmigrate failure); counted as flagging.
    error: bool = False


@dataclasses.dataclass
class ToolRun:
    name: str
    version: str
    how: str
    verdicts: dict[Key, Verdict] = dataclasses.field(default_factory=dict)
    #: Why the tool could not run at all (not installed, ...), else ``None``.
    unavailable: str | None = None
    informational: bool = False
    seconds: float = 0.0


@dataclasses.dataclass
class Score:
    misses: list[Key]
    false_alarms: list[Key]
    misclassified: list[Key]
    errors: list[Key]
    flagged: int


# --------------------------------------------------------------------------------------------
# The corpus


def load_labels() -> dict[Key, Label]:
    with LABELS.open("rb") as handle:
        raw = tomllib.load(handle)
    return {
        (app, name): Label(entry["label"], entry["reason"])
        for app, entries in raw.items()
        for name, entry in entries.items()
    }


def corpus_apps() -> list[str]:
    return sorted(p.name for p in CORPUS.glob("corpus_*") if (p / "migrations").is_dir())


def corpus_migrations() -> set[Key]:
    return {
        (path.parent.parent.name, path.stem)
        for path in CORPUS.glob("corpus_*/migrations/[0-9][0-9][0-9][0-9]_*.py")
    }


def check_labels(labels: dict[Key, Label]) -> None:
    on_disk = corpus_migrations()
    unlabelled = sorted(on_disk - set(labels))
    orphans = sorted(set(labels) - on_disk)
    if unlabelled or orphans:
        raise BenchmarkError(
            f"labels.toml and the corpus disagree: unlabelled {unlabelled}, "
            f"labels without a migration {orphans}."
        )
    bad = [key for key, label in labels.items() if label.label not in ("safe", *UNSAFE)]
    if bad:
        raise BenchmarkError(f"unknown label values for {bad}")


def acknowledged_anywhere() -> list[str]:
    """Corpus migrations that acknowledge a rule: not allowed (it would hide nothing, but the
    corpus must be judged as written by a team that did not pre-clear anything)."""
    return sorted(
        str(path.relative_to(REPO_ROOT))
        for path in CORPUS.glob("corpus_*/migrations/*.py")
        if "safemigrate_acknowledge" in path.read_text(encoding="utf-8")
    )


# --------------------------------------------------------------------------------------------
# Running the corpus project


def run_corpus(
    database_url: str, args: Sequence[str], *, script: str | None = None
) -> subprocess.CompletedProcess[str]:
    """``python manage.py ARGS`` (or ``python -c SCRIPT ARGS``) in the corpus project."""
    env = dict(os.environ, DATABASE_URL=database_url, DJANGO_SETTINGS_MODULE="settings")
    env.pop("PYTHONPATH", None)
    command = [sys.executable, "-c", script, *args] if script else [
        sys.executable, "manage.py", *args
    ]  # fmt: skip
    try:
        return subprocess.run(
            command,
            cwd=CORPUS,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise BenchmarkError(f"{shlex.join(command[1:3])} took longer than {TIMEOUT}s") from exc


def version_of(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


# --------------------------------------------------------------------------------------------
# The tools


def judge_ours(database_url: str, apps: Sequence[str], pg_major: int, *, offline: bool) -> ToolRun:
    args = ["checkmigrations", "--all", "--format", "json", "--fail-on", "never"]
    if offline:
        args += ["--offline", "--pg-version", str(pg_major)]
    run = ToolRun(
        name="django_safemigrate" + ("" if offline else " (live, empty database)"),
        version=f"{version_of('django-pg-safemigrate')} ({code_revision()})",
        how="manage.py " + shlex.join(args),
        informational=not offline,
    )
    started = time.perf_counter()
    result = run_corpus(database_url, args)
    run.seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise BenchmarkError(
            f"checkmigrations exited {result.returncode}:\n{tail(result.stdout, 20)}\n"
            f"{tail(result.stderr, 20)}"
        )
    data = json.loads(result.stdout)
    for report in data["migrations"]:
        if report["app_label"] not in apps:
            continue
        codes = sorted(
            {f["code"] + ("" if f.get("blocking", True) else " (not blocking)")
             for f in report["findings"]}
        )  # fmt: skip
        run.verdicts[(report["app_label"], report["name"])] = Verdict(
            flags=report["risk"] in UNSAFE,
            level=report["risk"],
            detail=", ".join(codes),
        )
    return run


_LINTER_LINE = re.compile(r"^\((?P<app>\w+), (?P<name>\w+)\)\.\.\. (?P<result>.+)$")


def judge_linter(database_url: str, apps: Sequence[str], expected: set[Key]) -> ToolRun:
    run = ToolRun(
        name="django-migration-linter",
        version=version_of("django-migration-linter"),
        how="manage.py lintmigrations APP --no-cache",
    )
    if importlib.util.find_spec("django_migration_linter") is None:
        run.unavailable = f"not installed ({INSTALL})"
        return run
    started = time.perf_counter()
    for app in apps:
        parsed, crashed = _lint(database_url, [app, "--no-cache"])
        run.verdicts.update(parsed)
        if not crashed:
            continue
        # It stops at the first migration whose sqlmigrate raises: lint the rest one by one.
        for key in sorted(k for k in expected if k[0] == app and k not in parsed):
            one, one_crashed = _lint(database_url, [key[0], key[1], "--no-cache"])
            if one_crashed or key not in one:
                run.verdicts[key] = Verdict(flags=True, detail=f"crash: {one_crashed}", error=True)
            else:
                run.verdicts[key] = one[key]
    run.seconds = time.perf_counter() - started
    return run


def _lint(database_url: str, args: list[str]) -> tuple[dict[Key, Verdict], str | None]:
    result = run_corpus(database_url, ["lintmigrations", *args])
    verdicts: dict[Key, Verdict] = {}
    current: Key | None = None
    for line in result.stdout.splitlines():
        match = _LINTER_LINE.match(line)
        if match:
            current = (match["app"], match["name"])
            outcome = match["result"].strip()
            flags = outcome.startswith(("ERR", "WARNING"))
            verdicts[current] = Verdict(flags=flags, detail=outcome)
        elif current and line.startswith("\t") and verdicts[current].flags:
            old = verdicts[current]
            detail = f"{old.detail}: {line.strip()}" if ":" not in old.detail else old.detail
            verdicts[current] = dataclasses.replace(old, detail=detail)
    crashed = None
    if "Traceback (most recent call last)" in result.stderr:
        crashed = result.stderr.strip().splitlines()[-1][:200]
    elif result.returncode not in (0, 1):
        crashed = f"exit {result.returncode}"
    return verdicts, crashed


def judge_safe_migrations(database_url: str, apps: Sequence[str]) -> ToolRun:
    args = ["check_migrations", *apps, "--format=json"]
    run = ToolRun(
        name="django-safe-migrations",
        version=version_of("django-safe-migrations"),
        how="manage.py check_migrations APP... --format=json",
    )
    if importlib.util.find_spec("django_safe_migrations") is None:
        run.unavailable = f"not installed ({INSTALL})"
        return run
    started = time.perf_counter()
    result = run_corpus(database_url, args)
    run.seconds = time.perf_counter() - started
    try:
        data = json.loads(result.stdout)
    except json.JSONDecodeError as exc:
        raise BenchmarkError(
            f"check_migrations printed no JSON (exit {result.returncode}):\n"
            f"{tail(result.stdout, 20)}\n{tail(result.stderr, 20)}"
        ) from exc
    counted: dict[Key, list[str]] = {}
    info: dict[Key, list[str]] = {}
    for issue in data["issues"]:
        key = (issue["app_label"], issue["migration_name"])
        target = counted if issue["severity"] in ("warning", "error") else info
        target.setdefault(key, []).append(f"{issue['rule_id']} {issue['severity']}")
    for key in set(counted) | set(info):
        shown = counted.get(key, []) + [f"({i})" for i in info.get(key, [])]
        run.verdicts[key] = Verdict(flags=key in counted, detail=", ".join(sorted(shown)))
    return run


def rendered_sql(database_url: str, apps: Sequence[str]) -> dict[Key, dict[str, Any]]:
    """``sqlmigrate`` of every corpus migration against the schema as it is at that point."""
    result = run_corpus(database_url, list(apps), script=SQL_CHILD)
    if result.returncode != 0:
        raise BenchmarkError(
            f"the sqlmigrate walk exited {result.returncode}:\n{tail(result.stderr, 20)}"
        )
    rendered = {}
    for line in result.stdout.splitlines():
        if line.startswith("{"):
            item = json.loads(line)
            rendered[(item["app"], item["name"])] = item
    return rendered


def judge_squawk(
    rendered: dict[Key, dict[str, Any]], pg_version: str, *, exclude: Sequence[str] = ()
) -> ToolRun:
    binary = shutil.which("squawk") or str(Path(sys.executable).parent / "squawk")
    how = "squawk --pg-version N --reporter json" + (
        f" --exclude {','.join(exclude)}" if exclude else ""
    )
    run = ToolRun(
        name="squawk" + (" (hygiene rules excluded)" if exclude else " (default rules)"),
        version=version_of("squawk-cli"),
        how=how + " on sqlmigrate output",
    )
    if not Path(binary).exists():
        run.unavailable = f"not installed ({INSTALL})"
        return run
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="safemigrate-accuracy-") as tmp:
        files: dict[str, Key] = {}
        for key, item in rendered.items():
            if item["sql_error"]:
                run.verdicts[key] = Verdict(
                    flags=True, detail=f"sqlmigrate failed: {item['sql_error'][:120]}", error=True
                )
                continue
            path = Path(tmp) / f"{key[0]}__{key[1]}.sql"
            path.write_text(item["sql"], encoding="utf-8")
            files[str(path)] = key
        command = [binary, "--pg-version", pg_version, "--reporter", "json"]
        if exclude:
            command.append(f"--exclude={','.join(exclude)}")
        result = subprocess.run(
            [*command, *sorted(files)],
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )
        try:
            issues = json.loads(result.stdout or "[]")
        except json.JSONDecodeError as exc:
            raise BenchmarkError(
                f"squawk printed no JSON (exit {result.returncode}):\n{tail(result.stderr, 20)}"
            ) from exc
        found: dict[Key, set[str]] = {}
        for issue in issues:
            about = files.get(str(Path(tmp) / Path(issue["file"]).name))
            if about is None:
                raise BenchmarkError(f"squawk reported an unknown file {issue['file']!r}")
            found.setdefault(about, set()).add(str(issue.get("rule_name") or issue.get("level")))
        for key in files.values():
            rules = found.get(key, set())
            run.verdicts[key] = Verdict(flags=bool(rules), detail=", ".join(sorted(rules)))
    run.seconds = time.perf_counter() - started
    return run


def squawk_version() -> str:
    binary = shutil.which("squawk") or str(Path(sys.executable).parent / "squawk")
    try:
        result = subprocess.run(
            [binary, "--version"], capture_output=True, text=True, timeout=30, check=False
        )
    except OSError:
        return "not installed"
    return result.stdout.strip() or "unknown"


# --------------------------------------------------------------------------------------------
# Scoring and reporting


def score(run: ToolRun, labels: dict[Key, Label]) -> Score:
    misses, false_alarms, misclassified, errors = [], [], [], []
    flagged = 0
    for key, label in sorted(labels.items()):
        verdict = run.verdicts.get(key, Verdict(flags=False, detail="not reported"))
        flagged += verdict.flags
        if verdict.error:
            errors.append(key)
        if label.label in UNSAFE and not verdict.flags:
            misses.append(key)
        elif label.label == "safe" and verdict.flags:
            false_alarms.append(key)
        elif label.label in UNSAFE and verdict.level in UNSAFE and verdict.level != label.label:
            misclassified.append(key)
    return Score(misses, false_alarms, misclassified, errors, flagged)


def results_table(runs: Sequence[ToolRun], labels: dict[Key, Label]) -> list[str]:
    unsafe = sum(label.label in UNSAFE for label in labels.values())
    safe = len(labels) - unsafe
    lines = [
        f"| tool | flagged | misses (of {unsafe}) | false alarms (of {safe}) "
        "| risky ↔ destructive | could not judge |",
        "|---|--:|--:|--:|--:|--:|",
    ]
    for run in runs:
        name = run.name + (" *(informational)*" if run.informational else "")
        if run.unavailable:
            lines.append(f"| {name} | {run.unavailable} | | | | |")
            continue
        s = score(run, labels)
        mis = str(len(s.misclassified)) if run.verdicts and _has_levels(run) else "n/a"
        lines.append(
            f"| {name} | {s.flagged} | {len(s.misses)} | {len(s.false_alarms)} | {mis} "
            f"| {len(s.errors)} |"
        )
    return lines


def _has_levels(run: ToolRun) -> bool:
    return any(v.level is not None for v in run.verdicts.values())


def goal_lines(runs: Sequence[ToolRun], labels: dict[Key, Label]) -> list[str]:
    ours = next(r for r in runs if r.name == "django_safemigrate")
    mine = score(ours, labels)
    others = [r for r in runs if not r.name.startswith("django_safemigrate") and not r.unavailable]
    lines = [
        f"- Zero misses: {len(mine.misses)} miss(es): "
        + ("**met**." if not mine.misses else "**not met**."),
    ]
    worse = [r.name for r in others if len(score(r, labels).false_alarms) <= len(mine.false_alarms)]
    lines.append(
        f"- Fewer false alarms than each other tool: {len(mine.false_alarms)} against "
        + ", ".join(f"{r.name} {len(score(r, labels).false_alarms)}" for r in others)
        + (": **met**." if not worse else f": **not met** (not fewer than {', '.join(worse)}).")
    )
    missing = [r.name for r in runs if r.unavailable]
    if missing:
        lines.append(f"- Not compared (not installed): {', '.join(missing)}.")
    return lines


def informational_note(runs: Sequence[ToolRun], labels: dict[Key, Label]) -> list[str]:
    live = next((r for r in runs if r.informational and not r.unavailable), None)
    if live is None or not score(live, labels).misses:
        return []
    return [
        "",
        f"The informational row misses {len(score(live, labels).misses)}: live against a "
        "database that does not have the corpus tables yet, `checkmigrations` takes every "
        "absent table for one created by the migration itself, so its lock findings stop "
        "counting and several rules stay silent. Judge with `--offline`, or against a "
        "database migrated up to the migrations under check.",
    ]


def listing(runs: Sequence[ToolRun], labels: dict[Key, Label]) -> list[str]:
    lines: list[str] = []
    for run in runs:
        if run.unavailable:
            continue
        s = score(run, labels)
        lines += ["", f"**{run.name}**" + (" (informational)" if run.informational else ""), ""]
        groups = [("Misses", s.misses), ("False alarms", s.false_alarms)]
        if _has_levels(run):
            groups.append(("Risky ↔ destructive", s.misclassified))
        for title, keys in groups:
            if not keys:
                lines.append(f"- {title}: none.")
                continue
            lines.append(f"- {title} ({len(keys)}):")
            for key in keys:
                label = labels[key]
                verdict = run.verdicts.get(key, Verdict(flags=False))
                said = verdict.level or ("flags" if verdict.flags else "silent")
                detail = f"; said {said}" + (f" ({verdict.detail})" if verdict.detail else "")
                lines.append(f"  - `{key[0]}.{key[1]}` ({label.label}: {label.reason}){detail}")
    return lines


def print_report(runs: Sequence[ToolRun], labels: dict[Key, Label]) -> None:
    print()
    for line in results_table(runs, labels):
        print(line)
    print()
    for line in goal_lines(runs, labels):
        print(line)
    for line in listing(runs, labels):
        print(line)


def code_revision() -> str:
    """The short hash of HEAD, noting uncommitted changes (new files too) to the package."""
    return git_revision(untracked=True, changes="uncommitted changes", quoted=False)


def rule_codes() -> list[str]:
    return sorted(
        m[1].upper() for p in RULES_DIR.glob("sm*.py") if (m := re.match(r"(sm\d{3})_", p.name))
    )


def section_text(
    runs: Sequence[ToolRun],
    labels: dict[Key, Label],
    *,
    pg_version: str,
    command: str,
    started: datetime.datetime,
    seconds: float,
) -> str:
    counts = {v: sum(label.label == v for label in labels.values()) for v in ("safe", *UNSAFE)}
    apps = corpus_apps()
    cores = os.cpu_count() or 0
    codes = rule_codes()
    tools = [
        f"django_safemigrate {version_of('django-pg-safemigrate')} (`{code_revision()}`)",
        f"django-migration-linter {version_of('django-migration-linter')}",
        f"django-safe-migrations {version_of('django-safe-migrations')}",
        f"squawk-cli {version_of('squawk-cli')} (`{squawk_version()}`)",
        f"Django {version_of('Django')}",
        f"pglast {version_of('pglast')}",
    ]
    lines = [
        f"## {SECTION_TITLE}",
        "",
        f"`bench/accuracy.py` judges every migration of the labelled corpus in `bench/corpus` "
        f"({len(labels)} migrations in {len(apps)} apps: {counts['safe']} safe, "
        f"{counts['risky']} risky, {counts['destructive']} destructive; labels and one-line "
        "reasons in `bench/corpus/labels.toml`, by PostgreSQL semantics, with every rewrite, "
        "scan and failure a label relies on checked on a real table by "
        "`tests/test_corpus_labels.py`) with each tool, and counts **misses** (labelled risky "
        "or destructive, the tool is silent) and **false alarms** (labelled safe, the tool "
        "flags it). Any warning or error counts as flagging; informational notes do not. A "
        "migration a tool cannot judge (it crashes, or `sqlmigrate` fails for it) counts as "
        "flagged, since a CI job would fail on it; the *could not judge* column counts those.",
        "",
        "How each tool ran:",
        "",
        "- django_safemigrate: `checkmigrations --all --format json --offline --pg-version "
        "<server major>` (no database: the corpus tables are judged as existing production "
        "tables); flagged = the migration's `risk` is risky or destructive. The "
        "informational row runs the same command live against the freshly created, empty "
        "database.",
        "- django-migration-linter: `lintmigrations APP --no-cache` per app on the empty "
        "database; `ERR` or `WARNING` flags. When it crashes on a migration, the rest of the "
        "app is linted one migration at a time.",
        "- django-safe-migrations: `check_migrations APP... --format=json`; `warning` or "
        "`error` flags, `info` does not.",
        "- squawk: `squawk --pg-version <server> --reporter json` on each migration's "
        "`sqlmigrate` output, rendered against the real schema (the database is migrated "
        "migration by migration); once with the default rules, once without "
        f"{', '.join(f'`{r}`' for r in SQUAWK_HYGIENE_RULES)} (they ask for hygiene rather "
        "than judge a lock, a rewrite or a loss).",
        "",
        f"Install the compared tools with `{INSTALL}` (benchmark tools only, not project "
        "dependencies).",
        "",
        "This run:",
        "",
        f"- Date: {started.strftime('%Y-%m-%d %H:%M UTC')}; the whole run took {seconds:.0f} s",
        f"- Machine: {cpu_model()}, {cores} cores, {platform.system()} {platform.release()}",
        f"- Python {platform.python_version()}, PostgreSQL {pg_version}",
        f"- Tools: {'; '.join(tools)}",
        f"- Rules present: {len(codes)} ({', '.join(codes)})",
        "",
        *results_table(runs, labels),
        "",
        "Target: django_safemigrate has zero misses and fewer false alarms than each other tool.",
        "",
        *goal_lines(runs, labels),
        *informational_note(runs, labels),
        "",
        "Every miss, false alarm and misclassification (migration, label: reason; what the "
        "tool said):",
        *listing(runs, labels),
        "",
        *reproduce_lines(command),
    ]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python bench/accuracy.py",
        description="Judge the labelled migration corpus with django_safemigrate and other "
        "tools; count misses and false alarms.",
    )
    parser.add_argument(
        "--write",
        action="store_true",
        help=f"rewrite the '{SECTION_TITLE}' section of {BENCHMARKS_MD.name}",
    )
    parser.add_argument(
        "--keep-database",
        action="store_true",
        help="do not drop the database the run created (to inspect it)",
    )
    return parser.parse_args(argv)


def run_all(maintenance_url: str, pg_major: int, *, keep_database: bool) -> list[ToolRun]:
    labels = load_labels()
    apps = corpus_apps()
    name = f"sm_accuracy_{os.getpid()}_{secrets.token_hex(3)}"
    database_url = with_database(maintenance_url, name)
    create_database(maintenance_url, name)
    print(f"Created database {name}.", file=sys.stderr)
    try:
        # First everything that wants the database empty, then the walk that migrates it.
        steps: list[tuple[str, Callable[[], ToolRun]]] = [
            ("django_safemigrate (offline)",
             lambda: judge_ours(database_url, apps, pg_major, offline=True)),
            ("django_safemigrate (live, empty database)",
             lambda: judge_ours(database_url, apps, pg_major, offline=False)),
            ("django-migration-linter",
             lambda: judge_linter(database_url, apps, set(labels))),
            ("django-safe-migrations", lambda: judge_safe_migrations(database_url, apps)),
        ]  # fmt: skip
        runs: list[ToolRun] = []
        for title, step in steps:
            print(f"Running {title}...", file=sys.stderr)
            runs.append(step())
        print("Rendering sqlmigrate output migration by migration...", file=sys.stderr)
        rendered = rendered_sql(database_url, apps)
        squawk_pg = f"{pg_major}.0"
        runs.append(judge_squawk(rendered, squawk_pg))
        runs.append(judge_squawk(rendered, squawk_pg, exclude=SQUAWK_HYGIENE_RULES))
    finally:
        if keep_database:
            print(f"Kept database {name}.", file=sys.stderr)
        else:
            drop_database(maintenance_url, name)
    ours = runs[0]
    unreported = sorted(set(labels) - set(ours.verdicts))
    if unreported:
        raise BenchmarkError(f"checkmigrations did not report {unreported}")
    # Main row first, then the others, the informational row last.
    return [r for r in runs if not r.informational] + [r for r in runs if r.informational]


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    labels = load_labels()
    try:
        check_labels(labels)
    except BenchmarkError as exc:
        print(f"CORPUS PROBLEM: {exc}", file=sys.stderr)
        return 2
    acknowledged = acknowledged_anywhere()
    if acknowledged:
        print(f"CORPUS PROBLEM: acknowledgements in {acknowledged}", file=sys.stderr)
        return 2
    given_url = os.environ.get("DATABASE_URL")
    maintenance_url = server_url("bench/accuracy.py")
    pg_version, pg_major = server_version(maintenance_url), server_major(maintenance_url)
    started = datetime.datetime.now(datetime.UTC)
    clock = time.perf_counter()
    print(f"PostgreSQL {pg_version} at {redacted(maintenance_url)}", file=sys.stderr)
    try:
        runs = run_all(maintenance_url, pg_major, keep_database=args.keep_database)
    except BenchmarkError as exc:
        print(f"\nBENCHMARK ABORTED: {exc}", file=sys.stderr)
        return 1
    seconds = time.perf_counter() - clock
    print_report(runs, labels)
    if args.write:
        command = reproduce_command("bench/accuracy.py", argv, given_url)
        text = section_text(
            runs, labels, pg_version=pg_version, command=command, started=started, seconds=seconds
        )
        update_benchmarks(BENCHMARKS_MD, SECTION_TITLE, text)
        print(f"\nWrote the '{SECTION_TITLE}' section of {BENCHMARKS_MD}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
