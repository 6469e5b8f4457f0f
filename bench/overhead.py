"""How much slower is ``manage.py safemigrate`` than Django's own ``migrate``?

Each sample applies the example site's whole plan (every contrib app, django_safemigrate's own
migrations and the 34 ``shop`` migrations) to a freshly created, empty database, in a child
process, and drops the database afterwards. Three variants run side by side:

``django``
    Django's core ``migrate`` command (``django.core.management.commands.migrate.Command``),
    not the override this app installs.
``migrate``
    ``manage.py migrate``: django_safemigrate's override (migration lock and ledger).
``safemigrate``
    ``manage.py safemigrate``: the governed deploy command.

Every child runs the same small ``-c`` script: ``django.setup()``, look the command up, then
time the command alone with ``time.perf_counter()`` and print that time on stderr. Two times
are kept per sample: the wall-clock time of the whole child process (interpreter and Django
start-up included), measured here, and the in-command time reported by the child.

By default (``--entry cli``) the child runs the command the way ``manage.py`` does
(``run_from_argv``), so all three variants run Django's system checks exactly as
``python manage.py migrate`` does. ``--entry call_command`` uses ``call_command()`` instead,
which skips the system checks for all three variants.

Before the first sample this project's modules (``django_safemigrate`` and the example
site) are compiled to bytecode with ``compileall``, as ``pip install`` does for an installed
package and as Django's own modules come: from a source checkout (an editable install, or
with ``PYTHONDONTWRITEBYTECODE`` set) every child would otherwise compile them from source
again, a cost that Django's own command never pays and a deployed project does not either.

Rounds run every variant once, in a shuffled order, so slow drift of a shared machine hits all
variants alike; the first ``--warmup`` rounds are discarded. Every child must exit 0 and leave
every ``shop`` migration applied, or the benchmark stops.

The server is ``DATABASE_URL`` (a maintenance database where the user may CREATE DATABASE),
else whatever ``django_safemigrate.testing.postgres.test_database_url()`` finds or starts.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres python bench/overhead.py --rounds 5
    python bench/overhead.py --rounds 5 --write   # also rewrite BENCHMARKS.md's section
"""

from __future__ import annotations

import argparse
import compileall
import dataclasses
import datetime
import importlib.metadata
import os
import platform
import random
import secrets
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    cpu_model,
    create_database,
    drop_database,
    git_revision,
    output_tails,
    redacted,
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

REPO_ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS_MD = REPO_ROOT / "BENCHMARKS.md"
SHOP_MIGRATIONS = REPO_ROOT / "example_site" / "shop" / "migrations"
SETTINGS_MODULE = "example_site.settings"
SECTION_TITLE = "safemigrate overhead"
MARKER = "@@safemigrate-bench "
#: Where a change would change what is measured: not in the benchmark's own files.
MEASURED_PATHS = (".", ":(exclude)bench", ":(exclude)BENCHMARKS.md")


#: What each child process runs: ``python -c CHILD_SCRIPT VARIANT ENTRY``.
CHILD_SCRIPT = """\
import sys, time
import django

variant, entry = sys.argv[1], sys.argv[2]
django.setup()
from django.core.management import ManagementUtility, call_command

if variant == "django":
    from django.core.management.commands.migrate import Command
    name, command = "migrate", Command()
else:
    name = variant
    command = ManagementUtility(["manage.py", name]).fetch_command(name)
    if not type(command).__module__.startswith("django_safemigrate."):
        sys.exit(f"{name} resolves to {type(command).__module__}, not django_safemigrate's")
started, cpu_started = time.perf_counter(), time.process_time()
if entry == "cli":
    command.run_from_argv(["manage.py", name, "--noinput"])
else:
    call_command(command, "--noinput")
elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
sys.stderr.write("\\n@@safemigrate-bench %r %r\\n" % (elapsed, cpu))
"""


# --------------------------------------------------------------------------------------------
# The per-sample databases


def expected_shop_migrations() -> set[str]:
    names = {p.stem for p in SHOP_MIGRATIONS.glob("[0-9][0-9][0-9][0-9]_*.py")}
    if not names:
        raise BenchmarkError(f"No migration files found in {SHOP_MIGRATIONS}.")
    return names


def check_applied(database_url: str, expected_shop: set[str], label: str) -> int:
    """Abort unless every shop migration is applied; return the count of applied migrations."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        shop_count = conn.execute(
            "SELECT count(*) FROM django_migrations WHERE app = 'shop'"
        ).fetchone()
        rows = conn.execute("SELECT name FROM django_migrations WHERE app = 'shop'").fetchall()
        total = conn.execute("SELECT count(*) FROM django_migrations").fetchone()
    missing = sorted(expected_shop - {name for (name,) in rows})
    if missing or shop_count is None or shop_count[0] != len(expected_shop):
        raise BenchmarkError(
            f"{label}: the command exited 0 but django_migrations has "
            f"{shop_count[0] if shop_count else 0} shop rows, {len(expected_shop)} expected; "
            f"missing: {', '.join(missing) or 'none'}. The timing would not be comparable."
        )
    return int(total[0]) if total else 0


# --------------------------------------------------------------------------------------------
# One sample


def run_sample(
    maintenance_url: str, variant: str, entry: str, round_no: int, expected_shop: set[str]
) -> Sample:
    name = f"sm_bench_{os.getpid()}_{round_no}_{variant}_{secrets.token_hex(3)}"
    label = f"round {round_no} {variant} (database {name})"
    database_url = with_database(maintenance_url, name)
    env = dict(os.environ, DATABASE_URL=database_url, DJANGO_SETTINGS_MODULE=SETTINGS_MODULE)
    create_database(maintenance_url, name)
    try:
        started = time.perf_counter()
        result = subprocess.run(
            [sys.executable, "-c", CHILD_SCRIPT, variant, entry],
            cwd=REPO_ROOT,
            env=env,
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
            raise BenchmarkError(
                f"{label}: the child exited 0 but printed no timing line.\n"
                f"--- stderr (last lines) ---\n{tail(result.stderr)}"
            )
        command, cpu = (float(x) for x in markers[-1].removeprefix(MARKER).split())
        applied = check_applied(database_url, expected_shop, label)
    finally:
        drop_database(maintenance_url, name)
    return Sample(
        round=round_no, variant=variant, wall=wall, command=command, cpu=cpu, applied=applied
    )


# --------------------------------------------------------------------------------------------
# Results


@dataclasses.dataclass(frozen=True)
class Results(SideBySide):
    entry: str


#: This project's packages, compiled to bytecode before the samples (see the module's doc).
COMPILED = ("django_safemigrate", "example_site")


def compile_sources() -> None:
    """Write the bytecode of this project's modules, as an installed package has it."""
    for name in COMPILED:
        if not compileall.compile_dir(REPO_ROOT / name, quiet=1):
            raise BenchmarkError(f"{name} does not compile; nothing can be measured.")


def run_benchmark(maintenance_url: str, rounds: int, warmup: int, seed: int, entry: str) -> Results:
    compile_sources()
    expected_shop = expected_shop_migrations()
    rng = random.Random(seed)
    load_before = os.getloadavg()
    samples: list[Sample] = []
    applied_counts: set[int] = set()
    total = warmup + rounds
    for round_no in range(total):
        order = list(VARIANTS)
        rng.shuffle(order)
        kind = "warm-up" if round_no < warmup else f"round {round_no - warmup + 1}/{rounds}"
        for variant in order:
            sample = run_sample(maintenance_url, variant, entry, round_no, expected_shop)
            applied_counts.add(sample.applied)
            if len(applied_counts) > 1:
                raise BenchmarkError(
                    "The variants applied different numbers of migrations "
                    f"({sorted(applied_counts)}); their times are not comparable."
                )
            print(
                f"{kind:>12}  {variant:<11}  wall {sample.wall:7.3f} s  "
                f"command {sample.command:7.3f} s  cpu {sample.cpu:7.3f} s  "
                f"({sample.applied} migrations)",
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
        entry=entry,
        load_before=load_before,
        load_after=os.getloadavg(),
    )


def print_summary(results: Results) -> None:
    print()
    print(
        f"{results.rounds} measured rounds (+{results.warmup} warm-up discarded), "
        f"entry={results.entry}, seed={results.seed}"
    )
    print(*summary_table(results), sep="\n")
    print()
    print(*ratio_table(results), sep="\n")
    print()
    print(
        f"Target: safemigrate / django at most {TARGET_RATIO:.2f} (ratio of medians). "
        f"Wall-clock {verdict(results, 'safemigrate', 'wall')}; "
        f"in-command {verdict(results, 'safemigrate', 'command')}."
    )


# --------------------------------------------------------------------------------------------
# BENCHMARKS.md


def section_text(results: Results, pg_version: str, command: str, revision: str) -> str:
    cores = os.cpu_count() or 0
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cores
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    applied = results.samples[0].applied if results.samples else 0
    shop = len(expected_shop_migrations())
    entry_note = (
        "each child runs the command through `run_from_argv()`, as `manage.py` does, so all "
        "three variants include Django's system checks"
        if results.entry == "cli"
        else "each child runs the command through `call_command()`, which skips Django's "
        "system checks for all three variants"
    )
    warmup_note = (
        f"{results.warmup} warm-up round{'s' if results.warmup != 1 else ''} discarded"
        if results.warmup
        else "no warm-up round"
    )
    load = "load average {:.2f} / {:.2f} / {:.2f} before, {:.2f} / {:.2f} / {:.2f} after".format(
        *results.load_before, *results.load_after
    )
    django_cmd = results.stats("django", "command")
    spread = django_cmd.maximum / django_cmd.minimum - 1
    lines = [
        f"## {SECTION_TITLE}",
        "",
        "`bench/overhead.py` applies the example site's whole plan "
        f"({applied} migrations: {shop} `shop` migrations, the contrib apps and "
        "django_safemigrate's own) to a freshly created empty database per sample, in a child "
        "process, and drops the database afterwards. Each round runs the three variants once, "
        f"in a shuffled order; {warmup_note}.",
        "",
        "- Django's `migrate`: Django's core command class "
        "(`django.core.management.commands.migrate.Command`), not the override.",
        "- `migrate` (override): `manage.py migrate` with django_safemigrate installed "
        "(migration lock and ledger).",
        "- `safemigrate`: `manage.py safemigrate`.",
        "",
        "Before the first sample, `django_safemigrate` and the example site are compiled to "
        "bytecode (`compileall`), as `pip install` does for an installed package and as "
        "Django's own modules come; otherwise every child of a source checkout compiles them "
        "again, which Django's own command never pays for.",
        "",
        "Measurements, in seconds:",
        "",
        "- wall-clock: the whole child process as seen by the parent (interpreter start-up, "
        "`django.setup()`, the command, exit);",
        f"- in-command: `time.perf_counter()` around the command inside the child ({entry_note});",
        "- in-command CPU: `time.process_time()` of the child over the same span. It counts "
        "only the Python process's own CPU time, not PostgreSQL's work or time spent waiting, "
        "and is less disturbed by other load on a shared machine than the two clock times. "
        "It is shown for context; the target is judged on the first two.",
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
        f"Target: `safemigrate` at most {TARGET_RATIO:.2f} times Django's core `migrate` "
        "(ratio of medians).",
        "",
        f"- Wall-clock: {verdict(results, 'safemigrate', 'wall')}.",
        f"- In-command: {verdict(results, 'safemigrate', 'command')}.",
        "",
        f"In this run the slowest round of Django's own `migrate` took {spread:.0%} longer "
        "in-command than its fastest, so the verdict of a single run on this machine is only "
        "as firm as that spread allows.",
        "",
        *reproduce_lines(command),
        "",
    ]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python bench/overhead.py",
        description="Compare manage.py safemigrate with Django's own migrate on the example "
        "site's whole plan, one fresh database per sample.",
    )
    parser.add_argument(
        "--rounds", type=int, default=5, help="measured rounds (default: 5; median of them)"
    )
    parser.add_argument(
        "--warmup", type=int, default=1, help="warm-up rounds, discarded (default: 1)"
    )
    parser.add_argument(
        "--seed", type=int, default=None, help="seed of the per-round shuffle (default: random)"
    )
    parser.add_argument(
        "--entry",
        choices=("cli", "call_command"),
        default="cli",
        help="how the child runs each command: 'cli' like manage.py (system checks run), or "
        "'call_command' (system checks skipped) (default: cli)",
    )
    parser.add_argument(
        "--write",
        action="store_true",
        help=f"rewrite the '{SECTION_TITLE}' section of {BENCHMARKS_MD.name}",
    )
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.warmup < 0:
        parser.error("--rounds must be at least 1 and --warmup at least 0")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    given_url = os.environ.get("DATABASE_URL")
    maintenance_url = server_url("bench/overhead.py")
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1_000_000)
    pg_version = server_version(maintenance_url)
    # Before the run: others may commit while it runs.
    revision = git_revision(MEASURED_PATHS, changes="uncommitted changes")
    print(
        f"PostgreSQL {pg_version} at {redacted(maintenance_url)}; "
        f"{args.warmup} warm-up + {args.rounds} rounds of {', '.join(VARIANTS)}",
        file=sys.stderr,
    )
    try:
        results = run_benchmark(maintenance_url, args.rounds, args.warmup, seed, args.entry)
    except BenchmarkError as exc:
        print(f"\nBENCHMARK ABORTED: {exc}", file=sys.stderr)
        return 1
    print_summary(results)
    if args.write:
        shown = [*argv] if args.seed is not None else [*argv, "--seed", str(seed)]
        command = reproduce_command("bench/overhead.py", shown, given_url)
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
