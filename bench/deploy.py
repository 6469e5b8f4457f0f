"""What does a deploy of a few new migrations onto a long applied history cost?

A project of ``--size`` migrations (default 2000) is written by ``bench/generate_project.py``
with all but the last three; a template database gets all of them applied (through
``manage.py safemigrate``, so the ledger holds their records as a deployed database's does),
then the last three migrations are added to the project and, where the gate would hold them
back, approved with ``manage.py reviewmigration`` on the template. Each sample copies the
template (``CREATE DATABASE … TEMPLATE``) and applies the three new migrations in a child
process. Three variants run side by side:

``django``
    Django's core ``migrate`` command (``django.core.management.commands.migrate.Command``),
    not the override this app installs.
``migrate``
    ``manage.py migrate``: django_safemigrate's override (migration lock and ledger).
``safemigrate``
    ``manage.py safemigrate``: the governed deploy command.

Every child runs the command through ``run_from_argv()`` as ``manage.py`` does (system checks
included) and prints the time of the command alone; the parent measures the whole child.
Rounds run every variant once in a shuffled order; the first ``--warmup`` rounds are
discarded. Every child must exit 0 and leave all ``--size`` migrations applied. Before the
first sample the project and ``django_safemigrate`` are compiled to bytecode, as an installed
project is.

``--project DIR`` keeps the generated project (and its template database, named after it)
for later runs: a second run with the same ``--project``, ``--size`` and ``--seed`` reuses
both instead of applying the long history again.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres python bench/deploy.py --rounds 5
    python bench/deploy.py --project /tmp/deploy2000 --rounds 5 --write
"""

from __future__ import annotations

import argparse
import compileall
import dataclasses
import datetime
import hashlib
import importlib.metadata
import json
import os
import platform
import random
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    copy_database,
    cpu_model,
    drop_database,
    git_revision,
    output_tails,
    reproduce_command,
    reproduce_lines,
    server_url,
    server_version,
    tail,
    update_benchmarks,
    with_database,
)
from _sidebyside import (
    TARGET_RATIO,
    VARIANTS,
    BenchmarkError,
    Sample,
    SideBySide,
    ratio_table,
    summary_table,
    verdict,
)
from generate_project import add_migrations, generate_project

REPO_ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS_MD = REPO_ROOT / "BENCHMARKS.md"
SECTION_TITLE = "Deploy onto a long history"
NEW = 3
MARKER = "@@deploy-bench "
STATE_FILE = ".deploy-bench.json"
REVIEWER = "deploy-bench"

#: What each child process runs: ``python -c CHILD_SCRIPT VARIANT``, in the project.
CHILD_SCRIPT = """\
import sys, time
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
started, cpu_started = time.perf_counter(), time.process_time()
command.run_from_argv(["manage.py", name, "--noinput"])
elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
sys.stderr.write("\\n@@deploy-bench %r %r\\n" % (elapsed, cpu))
"""

#: Makes the reviewer of the new migrations, in the template database.
REVIEWER_SCRIPT = """\
import sys
import django

django.setup()
from django.contrib.auth.models import Permission, User

user, _ = User.objects.get_or_create(username=sys.argv[1])
user.user_permissions.add(
    Permission.objects.get(
        content_type__app_label="django_safemigrate", codename="decide_migration"
    )
)
"""


# --------------------------------------------------------------------------------------------
# The project and its template database


@dataclasses.dataclass(frozen=True)
class Setup:
    root: Path
    template: str
    size: int
    new: list[tuple[str, str]]  # (app, migration name) of the migrations each sample applies
    applied_before: int  # rows of django_migrations in the template


#: The checksum cache's directory for the children (``XDG_CACHE_HOME``): one of this run,
#: never the user's; with ``--cache cold`` a new one for every sample.
CACHE_HOME: list[str] = []


def child_env(root: Path, database_url: str) -> dict[str, str]:
    path = os.pathsep.join([str(root), str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])
    env = dict(
        os.environ,
        DATABASE_URL=database_url,
        DJANGO_SETTINGS_MODULE="project.settings",
        PYTHONPATH=path.rstrip(os.pathsep),
    )
    if CACHE_HOME:
        env["XDG_CACHE_HOME"] = CACHE_HOME[-1]
    return env


def manage(root: Path, database_url: str, *args: str, script: str | None = None) -> str:
    command = [sys.executable, "-c", script, *args] if script else [
        sys.executable, "manage.py", *args
    ]  # fmt: skip
    result = subprocess.run(
        command,
        cwd=root,
        env=child_env(root, database_url),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise BenchmarkError(
            f"{' '.join(args) or 'setup script'} exited {result.returncode} in {root}.\n"
            f"{output_tails(result)}"
        )
    return result.stdout


def template_name(root: Path, size: int, seed: int) -> str:
    digest = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:10]
    return f"sm_deploy_tpl_{size}_{seed}_{digest}"


def database_exists(maintenance_url: str, name: str) -> bool:
    with psycopg.connect(maintenance_url, autocommit=True) as conn:
        row = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
    return row is not None


def new_migrations(paths: list[Path]) -> list[tuple[str, str]]:
    return [(path.parent.parent.name, path.stem) for path in paths]


def prepare(
    maintenance_url: str, root: Path, size: int, seed: int, *, reuse: bool
) -> tuple[Setup, bool]:
    """The project and its template database; whether they were reused."""
    template = template_name(root, size, seed)
    state_path = root / STATE_FILE
    if reuse and state_path.exists() and database_exists(maintenance_url, template):
        state = json.loads(state_path.read_text())
        if state.get("size") == size and state.get("seed") == seed and state.get("ready"):
            new = [(app, name) for app, name in state["new"]]
            before = applied_rows(with_database(maintenance_url, template))[0]
            return Setup(root, template, size, new, before), True
    drop_database(maintenance_url, template)
    print(f"Writing {size - NEW} migrations to {root} ...", file=sys.stderr, flush=True)
    generate_project(root, size - NEW, seed)
    admin_create(maintenance_url, template)
    template_url = with_database(maintenance_url, template)
    print(
        f"Applying them to the template database {template} (once) ...",
        file=sys.stderr,
        flush=True,
    )
    started = time.perf_counter()
    manage(root, template_url, "safemigrate", "--noinput", "-v", "0")
    print(f"  took {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    new = new_migrations(add_migrations(root, size - NEW, NEW, seed))
    approve_new(root, template_url, new)
    state_path.write_text(json.dumps({"size": size, "seed": seed, "new": new, "ready": True}))
    before = applied_rows(template_url)[0]
    return Setup(root, template, size, new, before), False


def admin_create(maintenance_url: str, name: str) -> None:
    from _common import create_database

    create_database(maintenance_url, name)


def approve_new(root: Path, template_url: str, new: list[tuple[str, str]]) -> None:
    """Approve the new migrations the gate would hold back, as a reviewer would."""
    plan = subprocess.run(
        [sys.executable, "manage.py", "safemigrate", "--plan"],
        cwd=root,
        env=child_env(root, template_url),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
    )
    if plan.returncode == 0:
        return
    if plan.returncode != 3:
        raise BenchmarkError(f"safemigrate --plan exited {plan.returncode}.\n{output_tails(plan)}")
    manage(root, template_url, REVIEWER, script=REVIEWER_SCRIPT)
    for app, name in new:
        if f"{app}.{name}" in plan.stdout and "blocked" in plan.stdout:
            manage(
                root, template_url, "reviewmigration", app, name, "--approve",
                "--note", "benchmark deploy", "--as", REVIEWER,
            )  # fmt: skip
    manage(root, template_url, "safemigrate", "--plan")


def compile_sources(root: Path) -> None:
    """Write the bytecode of the project and of this package, as an installed project has it."""
    for directory in (REPO_ROOT / "django_safemigrate", root):
        if not compileall.compile_dir(directory, quiet=1):
            raise BenchmarkError(f"{directory} does not compile; nothing can be measured.")


# --------------------------------------------------------------------------------------------
# One sample


def applied_rows(database_url: str) -> tuple[int, set[tuple[str, str]]]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        rows = conn.execute("SELECT app, name FROM django_migrations").fetchall()
    return len(rows), {(app, name) for app, name in rows}


def run_sample(
    maintenance_url: str, setup: Setup, variant: str, round_no: int, *, cache: str = "warm"
) -> Sample:
    if cache == "cold":
        CACHE_HOME.append(tempfile.mkdtemp(prefix="sm-deploy-cache-"))
    name = f"sm_deploy_{os.getpid()}_{round_no}_{variant}_{secrets.token_hex(3)}"
    label = f"round {round_no} {variant} (database {name})"
    database_url = with_database(maintenance_url, name)
    copy_database(maintenance_url, setup.template, name)
    try:
        started = time.perf_counter()
        result = subprocess.run(
            [sys.executable, "-c", CHILD_SCRIPT, variant],
            cwd=setup.root,
            env=child_env(setup.root, database_url),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            check=False,
        )
        wall = time.perf_counter() - started
        if result.returncode != 0:
            raise BenchmarkError(
                f"{label}: the child exited {result.returncode}.\n{output_tails(result)}"
            )
        markers = [line for line in result.stderr.splitlines() if line.startswith(MARKER)]
        if not markers:
            raise BenchmarkError(f"{label}: no timing line.\n--- stderr ---\n{tail(result.stderr)}")
        command, cpu = (float(x) for x in markers[-1].removeprefix(MARKER).split())
        applied, found = applied_rows(database_url)
        missing = [".".join(key) for key in setup.new if key not in found]
        if missing or applied != setup.applied_before + NEW:
            raise BenchmarkError(
                f"{label}: {applied} migrations applied, {setup.applied_before + NEW} "
                f"expected; new ones missing: {', '.join(missing) or 'none'}."
            )
    finally:
        drop_database(maintenance_url, name)
    return Sample(round_no, variant, wall, command, cpu)


# --------------------------------------------------------------------------------------------
# Results


@dataclasses.dataclass(frozen=True)
class Results(SideBySide):
    size: int
    cache: str = "warm"


def run_benchmark(
    maintenance_url: str, setup: Setup, rounds: int, warmup: int, seed: int, *, cache: str = "warm"
) -> Results:
    compile_sources(setup.root)
    rng = random.Random(seed)
    load_before = os.getloadavg()
    samples: list[Sample] = []
    for round_no in range(warmup + rounds):
        order = list(VARIANTS)
        rng.shuffle(order)
        kind = "warm-up" if round_no < warmup else f"round {round_no - warmup + 1}/{rounds}"
        for variant in order:
            sample = run_sample(maintenance_url, setup, variant, round_no, cache=cache)
            print(
                f"{kind:>12}  {variant:<11}  wall {sample.wall:7.3f} s  "
                f"command {sample.command:7.3f} s  cpu {sample.cpu:7.3f} s",
                file=sys.stderr,
                flush=True,
            )
            if round_no >= warmup:
                samples.append(sample)
    return Results(
        samples=samples,
        rounds=rounds,
        warmup=warmup,
        seed=seed,
        load_before=load_before,
        load_after=os.getloadavg(),
        size=setup.size,
        cache=cache,
    )


def print_summary(results: Results) -> None:
    print()
    print(
        f"{results.size} migrations, {NEW} new; {results.rounds} measured rounds "
        f"(+{results.warmup} warm-up discarded), seed={results.seed}, "
        f"checksum cache {results.cache}"
    )
    print(*summary_table(results), sep="\n")
    print()
    print(*ratio_table(results), sep="\n")
    print()
    for variant in ("safemigrate", "migrate"):
        print(
            f"Target: {variant} / django at most {TARGET_RATIO:.2f} (ratio of medians). "
            f"Wall-clock {verdict(results, variant, 'wall')}; "
            f"in-command {verdict(results, variant, 'command')}."
        )


def section_text(results: Results, pg_version: str, command: str, revision: str) -> str:
    cores = os.cpu_count() or 0
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cores
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    load = "load average {:.2f} / {:.2f} / {:.2f} before, {:.2f} / {:.2f} / {:.2f} after".format(
        *results.load_before, *results.load_after
    )
    warmup_note = (
        f"{results.warmup} warm-up round{'s' if results.warmup != 1 else ''} discarded"
        if results.warmup
        else "no warm-up round"
    )
    django_cmd = results.stats("django", "command")
    spread = django_cmd.maximum / django_cmd.minimum - 1
    lines = [
        f"## {SECTION_TITLE}",
        "",
        "`bench/deploy.py` generates a project of "
        f"{results.size} migrations (`bench/generate_project.py`, seed {results.seed}) and "
        f"a template database with all but the last {NEW} applied through `safemigrate` (so "
        "its ledger holds their records, as a deployed database's does); the new migrations "
        "are approved with `reviewmigration` where the gate would hold them back. Each sample "
        f"copies the template (`CREATE DATABASE … TEMPLATE`) and deploys the {NEW} new "
        "migrations in a child process that runs the command through `run_from_argv()`, as "
        "`manage.py` does (system checks included). Each round runs the three variants once, "
        f"in a shuffled order; {warmup_note}. The project and `django_safemigrate` are "
        "compiled to bytecode first, as an installed project is.",
        "",
        "- Django's `migrate`: Django's core command class "
        "(`django.core.management.commands.migrate.Command`), not the override.",
        "- `migrate` (override): `manage.py migrate` with django_safemigrate installed "
        "(migration lock and ledger).",
        "- `safemigrate`: `manage.py safemigrate` (lock, ledger, checksums of the applied "
        "migrations, the gate).",
        "",
        "Measurements, in seconds: wall-clock (the whole child process: interpreter start-up, "
        "`django.setup()`, the command, exit), in-command (`time.perf_counter()` around the "
        "command) and in-command CPU (`time.process_time()` of the child over the same span; "
        "PostgreSQL's own work is not in it).",
        "",
        cache_note(results),
        "",
        "This run:",
        "",
        f"- Date: {now}",
        f"- Machine: {cpu_model()}, {cores} cores ({usable} usable), {platform.system()} "
        f"{platform.release()}; shared with other work, {load}",
        f"- Python {platform.python_version()}, Django {importlib.metadata.version('Django')}, "
        f"psycopg {importlib.metadata.version('psycopg')}, PostgreSQL {pg_version}",
        f"- Code: {revision}",
        f"- Rounds: {results.rounds} (median, min and max over the rounds)",
        "",
        *summary_table(results),
        "",
        *ratio_table(results),
        "",
        f"Target: `safemigrate` and the `migrate` override at most {TARGET_RATIO:.2f} times "
        "Django's core `migrate` (ratio of medians).",
        "",
        f"- `safemigrate`: wall-clock {verdict(results, 'safemigrate', 'wall')}; in-command "
        f"{verdict(results, 'safemigrate', 'command')}.",
        f"- `migrate` (override): wall-clock {verdict(results, 'migrate', 'wall')}; in-command "
        f"{verdict(results, 'migrate', 'command')}.",
        "",
        f"In this run the slowest round of Django's own `migrate` took {spread:.0%} longer "
        "in-command than its fastest.",
        "",
        *reproduce_lines(command),
        "",
    ]
    return "\n".join(lines)


def cache_note(results: Results) -> str:
    if results.cache == "cold":
        return (
            '`safemigrate`\'s checksum cache (README, "Checksums") was empty in every sample '
            "(`--cache cold`): each run computed the checksum of every applied migration, as "
            "on a host that keeps no cache between deploys."
        )
    return (
        '`safemigrate`\'s checksum cache (README, "Checksums") is a directory of this run, '
        "filled by the first `safemigrate` sample (a warm-up round), as on a host that "
        "deployed before (`--cache warm`); `--cache cold` gives every sample an empty one."
    )


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python bench/deploy.py",
        description="Time a deploy of 3 new migrations onto a long applied history.",
    )
    parser.add_argument("--size", type=int, default=2000, help="migrations in all (default 2000)")
    parser.add_argument("--rounds", type=int, default=5, help="measured rounds (default 5)")
    parser.add_argument("--warmup", type=int, default=1, help="discarded rounds (default 1)")
    parser.add_argument("--seed", type=int, default=1, help="project and order seed (default 1)")
    parser.add_argument(
        "--project",
        type=Path,
        default=None,
        help="keep the project here, with its template database, and reuse both next time "
        "(default: a temporary directory, removed with its template afterwards)",
    )
    parser.add_argument(
        "--cache",
        choices=("warm", "cold"),
        default="warm",
        help="safemigrate's checksum cache: 'warm' (default) one directory for the run, "
        "'cold' an empty one for every sample",
    )
    parser.add_argument("--write", action="store_true", help="rewrite BENCHMARKS.md's section")
    args = parser.parse_args(argv)
    if args.size < NEW + 10:
        parser.error(f"--size must be at least {NEW + 10}")
    if args.rounds < 1 or args.warmup < 0:
        parser.error("--rounds must be at least 1 and --warmup at least 0")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    maintenance_url = server_url("bench/deploy.py")
    keep = args.project is not None
    root = args.project.resolve() if keep else Path(tempfile.mkdtemp(prefix="sm-deploy-"))
    setup = None
    try:
        CACHE_HOME.append(tempfile.mkdtemp(prefix="sm-deploy-cache-"))
        setup, reused = prepare(maintenance_url, root, args.size, args.seed, reuse=keep)
        if reused:
            print(f"Reusing {root} and template {setup.template}.", file=sys.stderr)
        results = run_benchmark(
            maintenance_url, setup, args.rounds, args.warmup, args.seed, cache=args.cache
        )
    except BenchmarkError as exc:
        print(f"bench/deploy.py: {exc}", file=sys.stderr)
        return 1
    finally:
        while CACHE_HOME:
            shutil.rmtree(CACHE_HOME.pop(), ignore_errors=True)
        if not keep:
            if setup is not None:
                drop_database(maintenance_url, setup.template)
            else:
                drop_database(maintenance_url, template_name(root, args.size, args.seed))
            shutil.rmtree(root, ignore_errors=True)
    print_summary(results)
    if args.write:
        revision = git_revision(
            (".", ":(exclude)bench", ":(exclude)BENCHMARKS.md"),
            changes="uncommitted changes",
        )
        shown, skip = [], False
        for arg in argv:
            if skip or arg == "--write" or arg.startswith("--project="):
                skip = False
                continue
            if arg == "--project":
                skip = True
                continue
            shown.append(arg)
        command = reproduce_command("bench/deploy.py", [*shown, "--write"], None)
        section = section_text(results, server_version(maintenance_url), command, revision)
        update_benchmarks(BENCHMARKS_MD, SECTION_TITLE, section)
        print(f"Rewrote the '{SECTION_TITLE}' section of {BENCHMARKS_MD}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
