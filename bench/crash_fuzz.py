"""Full crash fuzz of ``safemigrate``: 100 SIGKILLs and 20 terminated backends.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \\
        python bench/crash_fuzz.py --kills 100 --terminations 20 --write

Uses the fuzz scenario of the test suite (``tests/scenarios/fuzz``: 22
migrations mixing atomic, non-atomic, concurrent-index and backfill steps) and
the harness in ``tests/crash_fuzz.py``; ``--write`` records the result in the
"Crash fuzz" section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import cpu_model, update_benchmarks

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=100)
    parser.add_argument("--terminations", type=int, default=20)
    parser.add_argument("--per-round", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--write", action="store_true", help="update BENCHMARKS.md")
    args = parser.parse_args()

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    import django

    django.setup()  # tests.settings provisions DATABASE_URL when it is not set
    from tests.crash_fuzz import run_fuzz
    from tests.helpers import query

    started = time.monotonic()
    with tempfile.TemporaryDirectory() as workdir:
        report = run_fuzz(
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
    if args.write:
        _write(args, report, elapsed, server)
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


if __name__ == "__main__":
    raise SystemExit(main())
