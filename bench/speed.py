"""How fast is ``checkmigrations`` on long migration histories, and how does it grow?

For each size N (250, 500, 1000 and 2000 by default) ``bench/generate_project.py`` writes a
project of N migrations over ten apps (a realistic mix with cross-app foreign keys) and its
lockfile, into a temporary directory. Then, in rounds that run every variant once in a
shuffled order (the machine is shared, so drift hits all variants alike), the wall-clock time
of these child processes is measured:

``all``
    ``python manage.py checkmigrations --all --format json --fail-on never``, with
    ``DATABASE_URL`` pointing at a freshly created, empty database.
``offline``
    The same with ``--offline``.
``lint``
    ``python manage.py lintmigrations --no-cache`` (django-migration-linter, which lints
    every migration of the project's apps by running ``sqlmigrate`` on each), against the
    same empty database. Only at the ``--lint-sizes`` (default 1000) and in the first
    ``--lint-rounds`` rounds (default 1); it is cut off after ``--lint-timeout`` seconds
    (default 600), and then the timeout is reported as a lower bound.

Every ``checkmigrations`` run must exit 0 and report every migration; ``lintmigrations`` must
finish with its summary. Then the pull-request case: on the ``--since-size`` project
(default 2000), committed to git with its lockfile, three more migrations are added and
``checkmigrations --since HEAD`` is timed (``--rounds`` times).

With ``--instructions``, ``checkmigrations --all`` also runs once per size under valgrind's
callgrind (after the timed rounds, as many at once as there are cores), which counts the
machine instructions the process executed: the work done, the same on every run whatever
else the machine is doing (``PYTHONHASHSEED`` is fixed for these runs), so its growth with
N is read without the noise of a shared machine.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres python bench/speed.py
    python bench/speed.py --sizes 250 500 --lint-sizes 250 --rounds 1   # a quick look
    python bench/speed.py --write   # also rewrite BENCHMARKS.md's section
    python bench/speed.py --instructions   # also count instructions (needs valgrind)

``DATABASE_URL`` names a maintenance database on a server where the user may CREATE
DATABASE. lintmigrations needs ``pip install django-migration-linter``; without it the
``lint`` variant is skipped and the report says so.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import importlib.metadata
import importlib.util
import itertools
import json
import math
import os
import platform
import random
import re
import resource
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    cpu_model,
    create_database,
    drop_database,
    git_revision,
    output_tails,
    reproduce_command,
    reproduce_lines,
    server_version,
    update_benchmarks,
    with_database,
)
from generate_project import add_migrations, generate_project, git_commit

REPO_ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS_MD = REPO_ROOT / "BENCHMARKS.md"
SECTION_TITLE = "checkmigrations speed"
SIZES = (250, 500, 1000, 2000)
SINCE_ADDED = 3

#: Targets from the issue.
TARGET_LINT_RATIO = 20.0
TARGET_SINCE_SECONDS = 3.0
#: t(2N) / t(N) above this grows worse than linearly.
LINEAR_RATIO = 2.0

CHECK_ARGS = ["checkmigrations", "--all", "--format", "json", "--fail-on", "never"]
VARIANTS = {
    "all": CHECK_ARGS,
    "offline": [*CHECK_ARGS, "--offline"],
    "lint": ["lintmigrations", "--no-cache"],
}
LABELS = {
    "all": "`checkmigrations --all`",
    "offline": "`checkmigrations --all --offline`",
    "lint": "`lintmigrations`",
    "since": "`checkmigrations --since HEAD`",
}


class BenchmarkError(RuntimeError):
    """A run failed or gave a result that cannot be trusted; the benchmark stops."""


@dataclasses.dataclass(frozen=True)
class Sample:
    size: int
    variant: str
    round: int
    seconds: float
    #: True when the run was cut off: ``seconds`` is then a lower bound.
    timed_out: bool = False
    #: CPU time (user and system) of the child process: the work done, which other load
    #: on a shared machine does not stretch the way it stretches the wall clock.
    cpu: float | None = None


# --------------------------------------------------------------------------------------------
# Running one variant


@dataclasses.dataclass(frozen=True)
class Run:
    seconds: float
    cpu: float
    timed_out: bool
    result: subprocess.CompletedProcess[str] | None


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def child_env(database_url: str, **extra: str) -> dict[str, str]:
    """The environment of a ``manage.py`` child in a generated project."""
    env = dict(
        os.environ, DATABASE_URL=database_url, DJANGO_SETTINGS_MODULE="project.settings", **extra
    )
    env.pop("PYTHONPATH", None)  # the project's own directory comes first, as manage.py has it
    return env


def run_variant(
    project: Path, argv: Sequence[str], database_url: str, timeout: float | None
) -> Run:
    """Run ``manage.py argv`` in ``project``: wall-clock and CPU seconds, and the process."""
    env = child_env(database_url)
    cpu_before = _children_cpu()  # runs are one at a time: the difference is this child's
    started = time.perf_counter()
    try:
        result = subprocess.run(
            [sys.executable, "manage.py", *argv],
            cwd=project,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return Run(time.perf_counter() - started, _children_cpu() - cpu_before, True, None)
    return Run(time.perf_counter() - started, _children_cpu() - cpu_before, False, result)


def check_output(
    variant: str, result: subprocess.CompletedProcess[str], expected: int, label: str
) -> None:
    """Stop unless the run did the whole job: every migration reported or linted."""
    if variant == "lint":
        # lintmigrations exits 1 when it finds problems; what matters is that it got through.
        match = re.search(r"Valid migrations: \d+/(\d+)", result.stdout)
        if result.returncode not in (0, 1) or match is None:
            raise BenchmarkError(f"{label}: lintmigrations did not finish.\n{output_tails(result)}")
        if int(match[1]) < expected:
            raise BenchmarkError(
                f"{label}: lintmigrations linted {match[1]} migrations, {expected} expected."
            )
        return
    if result.returncode != 0:
        raise BenchmarkError(f"{label}: exited {result.returncode}.\n{output_tails(result)}")
    try:
        reported = len(json.loads(result.stdout)["migrations"])
    except (ValueError, KeyError) as exc:
        raise BenchmarkError(f"{label}: the output is not the JSON report ({exc}).") from exc
    if reported < expected:
        raise BenchmarkError(f"{label}: {reported} migrations reported, {expected} expected.")


def prepare(project: Path, size: int, seed: int, database_url: str) -> None:
    """Write the project, check it is consistent, and write its lockfile (released)."""
    generate_project(project, size, seed)
    for argv in (
        ["makemigrations", "--check", "--dry-run"],
        ["checkmigrations", "--update-lockfile"],
    ):
        result = run_variant(project, argv, database_url, None).result
        if result is None or result.returncode != 0:
            raise BenchmarkError(
                f"N={size}: 'manage.py {' '.join(argv)}' failed on the generated project."
                + (f"\n{output_tails(result)}" if result else "")
            )


# --------------------------------------------------------------------------------------------
# The benchmark


@dataclasses.dataclass
class Results:
    samples: list[Sample]
    rounds: int
    seed: int
    lint_sizes: tuple[int, ...]
    lint_timeout: float
    lint_rounds: int
    lint_available: bool
    since_size: int | None
    load_before: tuple[float, float, float]
    load_after: tuple[float, float, float] = (0.0, 0.0, 0.0)
    #: Instructions executed by ``checkmigrations --all`` at each size (``--instructions``).
    instructions: dict[int, int] = dataclasses.field(default_factory=dict)

    def values(self, size: int, variant: str) -> list[Sample]:
        return [s for s in self.samples if s.size == size and s.variant == variant]

    def median(self, size: int, variant: str) -> float | None:
        found = self.values(size, variant)
        return statistics.median(s.seconds for s in found) if found else None

    def cpu_median(self, size: int, variant: str) -> float | None:
        found = [s.cpu for s in self.values(size, variant) if s.cpu is not None]
        return statistics.median(found) if found else None

    def lower_bound(self, size: int, variant: str) -> bool:
        return any(s.timed_out for s in self.values(size, variant))

    def sizes(self) -> list[int]:
        return sorted({s.size for s in self.samples if s.variant == "all"})


def run_benchmark(args: argparse.Namespace, maintenance_url: str) -> Results:
    rng = random.Random(args.seed)
    lint_available = importlib.util.find_spec("django_migration_linter") is not None
    if not lint_available:
        print("django-migration-linter is not installed: no lint runs.", file=sys.stderr)
    results = Results(
        samples=[],
        rounds=args.rounds,
        seed=args.seed,
        lint_sizes=tuple(args.lint_sizes) if lint_available else (),
        lint_timeout=args.lint_timeout,
        lint_rounds=args.lint_rounds,
        lint_available=lint_available,
        since_size=args.since_size,
        load_before=os.getloadavg(),
    )
    name = f"sm_speed_{os.getpid()}_{secrets.token_hex(3)}"
    create_database(maintenance_url, name)
    database_url = with_database(maintenance_url, name)
    try:
        with tempfile.TemporaryDirectory(prefix="sm-speed-") as tmp:
            projects = {size: Path(tmp) / f"n{size}" for size in args.sizes}
            for size, project in projects.items():
                prepare(project, size, results.seed, database_url)
            for round_no in range(results.rounds):
                measure_round(results, projects, round_no, database_url, rng)
            if args.since_size:
                measure_since(results, Path(tmp) / "since", args.since_size, database_url)
            if args.instructions:
                count_instructions(results, projects, database_url)
    finally:
        drop_database(maintenance_url, name)
    results.load_after = os.getloadavg()
    return results


def measure_round(
    results: Results,
    projects: dict[int, Path],
    round_no: int,
    database_url: str,
    rng: random.Random,
) -> None:
    """Every variant at every size once, in a shuffled order: drift hits all sizes alike."""
    jobs = [(size, variant) for size in projects for variant in ("all", "offline")]
    if round_no < results.lint_rounds:
        jobs += [(size, "lint") for size in projects if size in results.lint_sizes]
    rng.shuffle(jobs)
    for size, variant in jobs:
        label = f"N={size} round {round_no + 1}/{results.rounds} {variant}"
        timeout = results.lint_timeout if variant == "lint" else None
        run = run_variant(projects[size], VARIANTS[variant], database_url, timeout)
        if run.result is not None:
            # At least size: the contrib apps' and django_safemigrate's come on top.
            check_output(variant, run.result, size, label)
        results.samples.append(Sample(size, variant, round_no, run.seconds, run.timed_out, run.cpu))
        note = f" (cut off at {timeout:.0f} s)" if run.timed_out else ""
        print(
            f"{label:<32} {run.seconds:8.2f} s, CPU {run.cpu:6.2f} s{note}",
            file=sys.stderr,
            flush=True,
        )


def measure_since(results: Results, project: Path, size: int, database_url: str) -> None:
    prepare(project, size, results.seed, database_url)
    git_commit(project, f"{size} generated migrations and their lockfile")
    added = add_migrations(project, size, SINCE_ADDED, results.seed)
    argv = ["checkmigrations", "--since", "HEAD", "--format", "json", "--fail-on", "never"]
    for round_no in range(results.rounds):
        label = f"N={size}+{len(added)} round {round_no + 1}/{results.rounds} since"
        run = run_variant(project, argv, database_url, None)
        assert run.result is not None
        check_output("since", run.result, SINCE_ADDED, label)
        reported = len(json.loads(run.result.stdout)["migrations"])
        if reported != SINCE_ADDED:
            raise BenchmarkError(f"{label}: {reported} migrations reported, {SINCE_ADDED} added.")
        results.samples.append(Sample(size, "since", round_no, run.seconds, cpu=run.cpu))
        print(
            f"{label:<32} {run.seconds:8.2f} s, CPU {run.cpu:6.2f} s", file=sys.stderr, flush=True
        )


def count_instructions(results: Results, projects: dict[int, Path], database_url: str) -> None:
    """``checkmigrations --all`` once per size under callgrind: instructions executed."""

    def count(size: int) -> int:
        env = child_env(database_url, PYTHONHASHSEED="0")
        with tempfile.TemporaryDirectory(prefix="sm-callgrind-") as out:
            result = subprocess.run(
                [
                    "valgrind",
                    "--tool=callgrind",
                    f"--callgrind-out-file={out}/callgrind.out",
                    sys.executable,
                    "manage.py",
                    *VARIANTS["all"],
                ],
                cwd=projects[size],
                env=env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                check=False,
            )
        label = f"N={size} instructions"
        check_output("all", result, size, label)
        match = re.search(r"Collected : (\d+)", result.stderr)
        if match is None:
            raise BenchmarkError(f"{label}: callgrind printed no count.\n{output_tails(result)}")
        print(f"{label:<32} {int(match[1]) / 1e9:8.2f} G", file=sys.stderr, flush=True)
        return int(match[1])

    sizes = sorted(projects)
    with ThreadPoolExecutor(max_workers=max(1, os.cpu_count() or 1)) as pool:
        results.instructions = dict(zip(sizes, pool.map(count, sizes), strict=True))


# --------------------------------------------------------------------------------------------
# Reading the results


def fit_line(points: Sequence[tuple[float, float]]) -> tuple[float, float]:
    """Least-squares ``t = a + b * n``: (a, b)."""
    mean_n = statistics.fmean(n for n, _ in points)
    mean_t = statistics.fmean(t for _, t in points)
    spread = sum((n - mean_n) ** 2 for n, _ in points)
    slope = sum((n - mean_n) * (t - mean_t) for n, t in points) / spread if spread else 0.0
    return mean_t - slope * mean_n, slope


def exponent(points: Sequence[tuple[float, float]]) -> float:
    """Slope of log t against log n (1 is linear, 2 quadratic)."""
    logs = [(math.log(n), math.log(t)) for n, t in points]
    return fit_line(logs)[1]


def _seconds(results: Results, size: int, variant: str) -> str:
    found = results.values(size, variant)
    if not found:
        return "-"
    median = statistics.median(s.seconds for s in found)
    prefix = "at least " if results.lower_bound(size, variant) else ""
    spread = f" ({min(s.seconds for s in found):.2f}-{max(s.seconds for s in found):.2f})"
    return f"{prefix}{median:.2f} s" + (spread if len(found) > 1 else "")


def time_table(results: Results) -> list[str]:
    lines = [
        "| N | " + " | ".join(LABELS[v] for v in ("all", "offline", "lint")) + " | "
        "`--all` per migration | `--offline` per migration |",
        "|--:|--:|--:|--:|--:|--:|",
    ]
    for size in results.sizes():
        per = [
            f"{1000 * m / size:.2f} ms" if (m := results.median(size, v)) is not None else "-"
            for v in ("all", "offline")
        ]
        cells = [_seconds(results, size, v) for v in ("all", "offline", "lint")]
        lines.append(f"| {size} | " + " | ".join(cells + per) + " |")
    return lines


def cpu_table(results: Results) -> list[str]:
    """Median CPU time (user and system) of the same runs."""
    sizes = results.sizes()
    variants = [v for v in ("all", "offline", "lint") if any(results.values(n, v) for n in sizes)]
    lines = [
        "| N | " + " | ".join(f"{LABELS[v]} CPU" for v in variants) + " |",
        "|--:|" + "--:|" * len(variants),
    ]
    for size in sizes:
        cells = []
        for variant in variants:
            cpu = results.cpu_median(size, variant)
            bound = "at least " if results.lower_bound(size, variant) else ""
            cells.append(f"{bound}{cpu:.2f} s" if cpu is not None else "-")
        lines.append(f"| {size} | " + " | ".join(cells) + " |")
    return lines


def instruction_table(results: Results) -> list[str]:
    """Instructions of ``checkmigrations --all`` at each size, and per migration."""
    lines = [
        f"| N | {LABELS['all']} instructions | per migration |",
        "|--:|--:|--:|",
    ]
    for size, count in sorted(results.instructions.items()):
        lines.append(f"| {size} | {count / 1e9:.2f} G | {count / size / 1e6:.2f} M |")
    return lines


@dataclasses.dataclass(frozen=True)
class Verdicts:
    lines: list[str]
    growth: list[str]


def verdicts(results: Results) -> Verdicts:
    sizes = results.sizes()
    growth: list[str] = []
    for variant, measure, what in (
        ("all", results.median, "wall clock"),
        ("offline", results.median, "wall clock"),
        ("all", results.cpu_median, "CPU time"),
        ("offline", results.cpu_median, "CPU time"),
    ):
        points = [(float(n), m) for n in sizes if (m := measure(n, variant)) is not None]
        if len(points) < 2:
            continue
        a, b = fit_line(points)
        times = dict(points)
        pairs = [
            f"t({n2})/t({n1}) = {times[n2] / times[n1]:.2f}"
            for n1, n2 in itertools.pairwise(sizes)
            if n1 in times and n2 in times
        ]
        growth.append(
            f"- {LABELS[variant]}, {what}: {', '.join(pairs)}; least squares t = {a:.2f} s + "
            f"{1000 * b:.2f} ms x N; log-log slope {exponent(points):.2f} (1 is linear)."
        )
    counted = sorted(results.instructions.items())
    if len(counted) >= 2:
        points = [(float(n), c / 1e9) for n, c in counted]
        a, b = fit_line(points)
        pairs = [
            f"I({n2})/I({n1}) = {c2 / c1:.2f}" for (n1, c1), (n2, c2) in itertools.pairwise(counted)
        ]
        growth.append(
            f"- {LABELS['all']}, instructions: {', '.join(pairs)}; least squares I = {a:.2f} G + "
            f"{1000 * b:.2f} M x N; log-log slope {exponent(points):.2f} (1 is linear)."
        )
    lines: list[str] = []
    t1000, t2000 = results.median(1000, "all"), results.median(2000, "all")
    c1000, c2000 = results.cpu_median(1000, "all"), results.cpu_median(2000, "all")
    if t1000 is not None and t2000 is not None:
        ratio = t2000 / t1000
        met = "met" if ratio <= LINEAR_RATIO else "not met"
        cpu = f" (CPU time: {c2000 / c1000:.2f})" if c1000 and c2000 else ""
        lines.append(
            f"- `--all` grows no worse than linearly: t(2000)/t(1000) = {ratio:.2f} on the "
            f"wall clock{cpu} (target at most {LINEAR_RATIO:.1f}): {met}."
        )
    i1000, i2000 = results.instructions.get(1000), results.instructions.get(2000)
    if i1000 and i2000:
        ratio = i2000 / i1000
        met = "met" if ratio <= LINEAR_RATIO else "not met"
        lines.append(
            f"- `--all` grows no worse than linearly, counted in instructions (the same on every "
            f"run): I(2000)/I(1000) = {ratio:.2f} (target at most {LINEAR_RATIO:.1f}): {met}."
        )
    lint_sizes = [n for n in sizes if results.values(n, "lint")]
    for size in lint_sizes:
        ours = results.median(size, "all")
        theirs = results.median(size, "lint")
        if ours is None or theirs is None:
            continue
        bound = results.lower_bound(size, "lint")
        ratio = theirs / ours
        text = f"at least {ratio:.1f}" if bound else f"{ratio:.1f}"
        if size == 1000:
            met = "met" if ratio >= TARGET_LINT_RATIO else ("not met" if not bound else "unknown")
            lines.append(
                f"- At N=1000 `lintmigrations` takes {text}x as long as `checkmigrations --all` "
                f"(target at least {TARGET_LINT_RATIO:.0f}x): {met}."
            )
        else:
            lines.append(f"- At N={size} `lintmigrations` takes {text}x as long.")
    if not results.lint_available:
        lines.append("- `lintmigrations`: django-migration-linter is not installed; not measured.")
    if results.since_size:
        since = results.median(results.since_size, "since")
        if since is not None:
            met = "met" if since < TARGET_SINCE_SECONDS else "not met"
            shown = _seconds(results, results.since_size, "since")
            lines.append(
                f"- `--since HEAD` with {SINCE_ADDED} new migrations on the "
                f"{results.since_size}-migration project: {shown} "
                f"(target under {TARGET_SINCE_SECONDS:.0f} s): {met}."
            )
    return Verdicts(lines, growth)


def print_summary(results: Results) -> None:
    print()
    print(*time_table(results), sep="\n")
    print()
    print(*cpu_table(results), sep="\n")
    if results.instructions:
        print()
        print(*instruction_table(results), sep="\n")
    found = verdicts(results)
    print()
    print(*found.growth, sep="\n")
    print(*found.lines, sep="\n")


# --------------------------------------------------------------------------------------------
# BENCHMARKS.md


def _rounds_phrase(rounds: int) -> str:
    return "in the first round only" if rounds == 1 else f"in the first {rounds} rounds only"


def section_text(results: Results, pg_version: str, command: str, revision: str) -> str:
    cores = os.cpu_count() or 0
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cores
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    load = "load average {:.2f} / {:.2f} / {:.2f} before, {:.2f} / {:.2f} / {:.2f} after".format(
        *results.load_before, *results.load_after
    )
    found = verdicts(results)
    lint_version = (
        importlib.metadata.version("django-migration-linter") if results.lint_available else None
    )
    lint_sizes = ", ".join(str(n) for n in results.lint_sizes) or "none"
    lines = [
        f"## {SECTION_TITLE}",
        "",
        "`bench/speed.py` generates, for each size N, a project of N migrations over ten apps "
        "with `bench/generate_project.py` (seeded; each migration draws one to four operations "
        "from a realistic mix: `CreateModel` with several fields, nullable and defaulted "
        "`AddField`, foreign keys to models of other apps, `AddIndex`, `AlterField`, "
        "`RemoveField`, `RenameField`, `AddConstraint`, `RunPython`, `RunSQL`; `makemigrations "
        "--check` finds nothing to do) and its lockfile. Each round runs every variant at every "
        "size once, all in one shuffled order (so drift on the shared machine hits every size "
        "alike), as a child process against a freshly created empty database; times are the "
        "wall clock of the whole process (interpreter start-up, Django set-up and system "
        "checks included), median of the rounds with min-max in brackets, and the CPU time "
        "the process used (user and system), which other work on the machine does not "
        "stretch.",
        "",
        f"- {LABELS['all']}: `python manage.py checkmigrations --all --format json "
        "--fail-on never`.",
        f"- {LABELS['offline']}: the same with `--offline` (SQL rendered for the oldest "
        "PostgreSQL the installed Django supports, no connection).",
        f"- {LABELS['lint']}: `python manage.py lintmigrations --no-cache` "
        f"(django-migration-linter {lint_version or 'not installed'}), at N = {lint_sizes}, "
        f"{_rounds_phrase(results.lint_rounds)} (it runs `sqlmigrate` once per "
        "migration, and each rebuilds the project state up to that migration), cut off after "
        f'{results.lint_timeout:.0f} s ("at least" marks a lower bound).',
        f"- {LABELS['since']}: the {results.since_size}-migration project committed to git "
        f"with its lockfile, then {SINCE_ADDED} more migrations of the same history added "
        "(untracked files, as in a pull request's checkout).",
        "",
        "This run:",
        "",
        f"- Date: {now}",
        f"- Machine: {cpu_model()}, {cores} cores ({usable} usable), {platform.system()} "
        f"{platform.release()}; shared with other work, {load}",
        f"- Python {platform.python_version()}, Django {importlib.metadata.version('Django')}, "
        f"PostgreSQL {pg_version}",
        f"- Code: {revision}",
        f"- Rounds: {results.rounds}; generator seed {results.seed}",
        "",
        *time_table(results),
        "",
        "CPU time (user and system) of the same processes, median:",
        "",
        *cpu_table(results),
        "",
        *(
            [
                "Instructions executed (valgrind's callgrind, one run per size with "
                "`PYTHONHASHSEED=0`; the count is the work the process did, which the other "
                "work on a shared machine does not change, so it shows how the cost grows "
                "without the wall clock's noise):",
                "",
                *instruction_table(results),
                "",
            ]
            if results.instructions
            else []
        ),
        "Growth:",
        "",
        *found.growth,
        "",
        "Targets:",
        "",
        *found.lines,
        "",
        *reproduce_lines(command),
        "",
    ]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python bench/speed.py",
        description="Time checkmigrations (and lintmigrations) on generated projects.",
    )
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=list(SIZES), help="migrations per project"
    )
    parser.add_argument("--rounds", type=int, default=3, help="rounds (median; default 3)")
    parser.add_argument(
        "--lint-sizes",
        type=int,
        nargs="*",
        default=[1000],
        help="sizes at which lintmigrations runs too (default: 1000)",
    )
    parser.add_argument(
        "--lint-timeout",
        type=float,
        default=600.0,
        help="seconds after which a lintmigrations run is cut off (default 600)",
    )
    parser.add_argument(
        "--lint-rounds",
        type=int,
        default=1,
        help="rounds in which lintmigrations runs, the first ones (default 1: it is slow)",
    )
    parser.add_argument(
        "--since-size",
        type=int,
        default=2000,
        help="size of the --since project (default 2000; 0 skips it)",
    )
    parser.add_argument("--seed", type=int, default=1, help="generator seed (default 1)")
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="also count the instructions of `checkmigrations --all` at each size (valgrind)",
    )
    parser.add_argument(
        "--write",
        action="store_true",
        help=f"rewrite the '{SECTION_TITLE}' section of {BENCHMARKS_MD.name}",
    )
    args = parser.parse_args(argv)
    if args.rounds < 1 or any(n < 10 for n in args.sizes):
        parser.error("--rounds must be at least 1 and every size at least 10")
    if args.instructions and shutil.which("valgrind") is None:
        parser.error("--instructions needs valgrind (Debian: apt-get install valgrind)")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    given_url = os.environ.get("DATABASE_URL")
    if not given_url:
        raise SystemExit(
            "bench/speed.py needs DATABASE_URL: a maintenance database on a PostgreSQL server "
            "where the user may CREATE DATABASE, e.g. "
            "DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres."
        )
    pg_version = server_version(given_url)
    revision = git_revision()  # before the run: others may commit while it runs
    try:
        results = run_benchmark(args, given_url)
    except BenchmarkError as exc:
        print(f"\nBENCHMARK ABORTED: {exc}", file=sys.stderr)
        return 1
    print_summary(results)
    if args.write:
        command = reproduce_command("bench/speed.py", argv, given_url)
        update_benchmarks(
            BENCHMARKS_MD,
            SECTION_TITLE,
            section_text(results, pg_version, command, revision),
            prefix=True,
        )
        print(f"\nWrote the '{SECTION_TITLE}' section of {BENCHMARKS_MD}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
