"""Full crash fuzz of ``safemigrate``: 100 SIGKILLs and 20 terminated backends.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \\
        python bench/crash_fuzz.py --kills 100 --terminations 20 --write

Uses the fuzz scenario of the test suite (``tests/scenarios/fuzz``: 22
migrations mixing atomic, non-atomic, concurrent-index and backfill steps) and
the harness in ``tests/crash_fuzz.py``; ``--write`` records the result in the
"Crash fuzz" section of BENCHMARKS.md.

With ``--online``, the online forms instead (``tests/scenarios/fuzz_online``:
nine migrations that run online on a table of 100,000 rows, which every round
finds created and filled); ``--write`` records it in the "Crash fuzz, online
forms" section.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import cpu_model, split_sections, update_benchmarks

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=100)
    parser.add_argument("--terminations", type=int, default=20)
    parser.add_argument(
        "--per-round", type=int, default=None, help="interruptions per round (10; online: 3)"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--online", action="store_true", help="fuzz the online forms (tests/scenarios/fuzz_online)"
    )
    parser.add_argument("--write", action="store_true", help="update BENCHMARKS.md")
    args = parser.parse_args()
    if args.per_round is None:
        args.per_round = 3 if args.online else 10

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    import django

    django.setup()  # tests.settings provisions DATABASE_URL when it is not set
    from tests.crash_fuzz import run_fuzz, run_online_fuzz
    from tests.helpers import query

    started = time.monotonic()
    with tempfile.TemporaryDirectory() as workdir:
        report = (run_online_fuzz if args.online else run_fuzz)(
            Path(workdir),
            kills=args.kills,
            terminations=args.terminations,
            per_round=args.per_round,
            seed=args.seed,
            log=print,
        )
    elapsed = time.monotonic() - started
    server = query("postgres", "SHOW server_version")[0][0]
    verdict = "PASS" if not report.failures else "FAIL"
    print(
        f"{verdict}: {report.kills} kills, {report.terminations} terminations, "
        f"{report.rounds} rounds, {len(report.failures)} failures, {elapsed:.0f}s"
    )
    for failure in report.failures:
        print(failure)
    if args.online:
        print("stopped at:", dict(sorted(report.stopped_at.items())))
        print("left for the rerun:", dict(sorted(report.left_midway.items())))
    if args.write:
        (_write_online if args.online else _write)(args, report, elapsed, server)
    return 0 if not report.failures else 1


def _write(args: argparse.Namespace, report: object, elapsed: float, server: str) -> None:
    r = report  # FuzzReport
    cpu = cpu_model()
    section = f"""## Crash fuzz

`bench/crash_fuzz.py` applies the fuzz scenario (`tests/scenarios/fuzz`: 22 migrations
mixing atomic, non-atomic, concurrent-index and backfill steps) on fresh databases,
interrupting runs at random moments: SIGKILL of the runner process, or
`pg_terminate_backend` of its migration session. After the interruptions of a round,
one more run finishes the plan, and the database is compared with a clean run:
`pg_dump --schema-only` identical, every migration recorded exactly once, no INVALID
index, backfilled values exactly right.

- Date: {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC
- Machine: {cpu}, {os.cpu_count()} cores; PostgreSQL {server}; Python {platform.python_version()}
- Seed {args.seed}, {args.per_round} interruptions per round

| SIGKILLs | terminated backends | rounds | failures | duration |
|--:|--:|--:|--:|--:|
| {r.kills} | {r.terminations} | {r.rounds} | {len(r.failures)} | {elapsed:.0f} s |

Reproduce:

```console
$ DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres python bench/crash_fuzz.py \\
    --kills {args.kills} --terminations {args.terminations} --seed {args.seed} --write
```
"""
    update_benchmarks(ROOT / "BENCHMARKS.md", "Crash fuzz", section)


def _write_online(args: argparse.Namespace, report: Any, elapsed: float, server: str) -> None:
    r = report  # FuzzReport
    cpu = cpu_model()
    stops = _by_migration(r.stopped_at)
    left = ", ".join(f"{what} {count}" for what, count in sorted(r.left_midway.items()))
    section = f"""## Crash fuzz, online forms

`bench/crash_fuzz.py --online` interrupts the online forms (`tests/scenarios/fuzz_online`):
every round starts from a copy of a database where the first two migrations created a
table and filled it with 100,000 rows, so the nine that follow run online on it (a unique
constraint, `unique=True`, `NOT NULL` without and with a default, a check, a nullable
foreign key, an index added and one removed, a `NOT NULL` field with a default, `int` to
`bigint`). A run is interrupted by a SIGKILL of the runner process or by
`pg_terminate_backend` of its migration session, at a moment of the uninterrupted run's
step timeline drawn at random and found again in the run from the ledger's step records
(terminations inside a step that runs alone: a concurrent build or drop, a committing
`DO` block). After the interruptions of a round, one more run finishes the plan, and the
database is compared with an uninterrupted run: `pg_dump --schema-only` identical, every
row of the table identical (the converted column included) and as the fill's formulas
say, every migration and every step recorded exactly once, and nothing left of an
online form: no INVALID index, NOT VALID constraint, temporary `…sm_notnull` check,
trigger on the table, shadow column or sync function.

- Date: {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC
- Machine: {cpu}, {os.cpu_count()} cores; PostgreSQL {server}; Python {platform.python_version()}
- Seed {args.seed}, {args.per_round} interruptions per round

| SIGKILLs | terminated backends | rounds | rounds failed | duration |
|--:|--:|--:|--:|--:|
| {r.kills} | {r.terminations} | {r.rounds} | {len(r.failures)} | {elapsed:.0f} s |

Where the interruptions stopped the plan (the first step not recorded): {stops}.
What they had left for the next run to finish or clean up: {left or "nothing"}.
{_failed_rounds(r.failures)}
Reproduce:

```console
$ DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres python bench/crash_fuzz.py --online \\
    --kills {args.kills} --terminations {args.terminations} --seed {args.seed} --write
```
"""
    path = ROOT / "BENCHMARKS.md"
    title = "Crash fuzz, online forms"
    head, sections = split_sections(path.read_text(encoding="utf-8"))
    titles = [body.splitlines()[0].removeprefix("## ").strip().lower() for body in sections]
    if title.lower() not in titles and "crash fuzz" in titles:
        # The first time: right after the crash fuzz of the plain forms.
        sections.insert(titles.index("crash fuzz") + 1, section)
        parts = [head.rstrip("\n") + "\n"] + [s.rstrip("\n") + "\n" for s in sections]
        temporary = path.with_name(f".{path.name}.{os.getpid()}")
        temporary.write_text("\n".join(parts), encoding="utf-8")
        os.replace(temporary, path)
        return
    update_benchmarks(path, title, section)


def _failed_rounds(failures: list[str]) -> str:
    """The rounds that failed, each with what interrupted it and the first line of what
    differed (the script's output has the rest)."""
    if not failures:
        return ""
    lines = ["", "Rounds that failed:", ""]
    for failure in failures:
        head, _, problems = failure.partition("): ")
        first, _, diff = problems.partition("\n")
        # A schema difference: its changed lines, in a row.
        changed = [
            "`" + line.strip() + "`"
            for line in diff.splitlines()
            if line[:1] in "+-" and not line.startswith(("+++", "---"))
        ]
        text = first.rstrip(":") + (": " + " ".join(changed) if changed else "")
        lines.append(f"- {head}): {text[:1500]}")
    return "\n".join(lines) + "\n"


def _by_migration(stopped_at: dict[str, int]) -> str:
    """``0004_ref_unique 5 (steps 1, 3), …`` from counts by step."""
    by: dict[str, dict[int, int]] = {}
    for where, count in stopped_at.items():
        found = re.fullmatch(r"(\S+) step (\d+)/\d+", where)
        name, index = (found[1], int(found[2])) if found else (where, 0)
        by.setdefault(name, {})
        by[name][index] = by[name].get(index, 0) + count
    parts = []
    for name in sorted(by):
        steps = by[name]
        total = sum(steps.values())
        listed = ", ".join(str(i) for i in sorted(steps) if i)
        parts.append(f"{name} {total}" + (f" (steps {listed})" if listed else ""))
    return "; ".join(parts)


if __name__ == "__main__":
    raise SystemExit(main())
