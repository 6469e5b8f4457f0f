"""Every benchmark script still runs against the package as it is now.

The benchmarks reach into the package (the backfill benchmark wraps the step runner to
time each step), so a change to the package can break them without any other test
noticing. Each runs here once at its smallest size, without ``--write``, against the
test server, and must finish with its results table.
``bench/accuracy.py`` needs the other linters and is not run here;
``tests/test_corpus_labels.py`` checks its corpus.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.helpers import ROOT, server_url

SCRIPTS = {
    "backfill": (["--rows", "3000", "--rounds", "1"], "| variant | total |"),
    "lock_timeout": (["--rounds", "1", "--hold", "1"], "| variant | migration time |"),
    "overhead": (["--rounds", "1", "--warmup", "0"], "| measurement | variant | median |"),
    "speed": (
        ["--sizes", "20", "40", "--rounds", "1", "--lint-sizes", "--since-size", "0"],
        "| N | `checkmigrations --all` |",
    ),
}


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_benchmark_runs_to_its_results(script: str) -> None:
    args, table = SCRIPTS[script]
    env = dict(os.environ, DATABASE_URL=server_url())
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / f"{script}.py"), *args],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    assert table in result.stdout
