"""Every benchmark script still runs against the package as it is now.

The benchmarks reach into the package (the backfill benchmark wraps the step runner to
time each step), so a change to the package can break them without any other test
noticing. Each runs here once at its smallest size, without ``--write``, against the
test server, and must finish with its results table (``bench/live_traffic.py``: with
every row it ran).
``bench/accuracy.py`` needs the other linters and is not run here;
``tests/test_corpus_labels.py`` checks its corpus.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.helpers import ROOT, server_url

pytestmark = pytest.mark.once

SCRIPTS = {
    "backfill": (["--rows", "3000", "--rounds", "1"], "| variant | total |"),
    "deploy": (["--size", "20", "--rounds", "1"], "| measurement | variant | median |"),
    # The dump check fails the run when the override's or safemigrate's schema is not Django's.
    "fresh": (["--sizes", "20", "--rounds", "1", "--dump-check"], "N=20: schemas identical"),
    "fleet_fuzz": (["--trials", "1", "--tenants", "2"], "| trials | processes killed |"),
    "lock_timeout": (["--rounds", "1", "--hold", "1"], "| variant | migration time |"),
    "online_typechange": (["--rows", "3000"], "whole sequence:"),
    "overhead": (["--rounds", "1", "--warmup", "0"], "| measurement | variant | median |"),
    "tenants": (["--tenants", "2", "--rounds", "1"], "| tenants | deploy | executor |"),
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


def test_live_traffic_prints_a_row_per_sample() -> None:
    """One scenario, two variants, both reader modes: four rows, each judged."""
    args = [
        "--rows", "2000", "--scenarios", "AddIndex", "--variants", "migrate,safemigrate",
        "--seconds-before", "0.5", "--seconds-after", "0.3", "--hold", "1", "--seed", "1",
    ]  # fmt: skip
    env = dict(os.environ, DATABASE_URL=server_url())
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "live_traffic.py"), *args],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    rows = [line for line in result.stdout.splitlines() if line.startswith("| AddIndex |")]
    expected = {
        (reader, variant)
        for reader in ("none", "1 s reader")
        for variant in ("Django's `migrate`", "`safemigrate`")
    }
    cells = [[cell.strip() for cell in row.strip("|").split("|")] for row in rows]
    assert sorted((c[1], c[2]) for c in cells) == sorted(expected), result.stdout
    for c in cells:
        # The migration ran and was judged: exit 0, completed, each target met or not.
        assert c[9] == "0", c
        assert c[13] == "met", c
        assert all(v in {"met", "not met", "n/a"} for v in c[10:13]), c
    assert "Rows meeting every target:" in result.stdout


def test_deploy_reports_the_three_variants() -> None:
    """A deploy of three new migrations onto a small applied history, each variant timed."""
    env = dict(os.environ, DATABASE_URL=server_url())
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "deploy.py"), "--size", "20", "--rounds", "1"],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    for variant in ("Django's `migrate`", "`migrate` (override)", "`safemigrate`"):
        rows = [line for line in result.stdout.splitlines() if line.startswith("| in-command |")]
        assert any(f"| {variant} |" in row for row in rows), result.stdout
    assert "Target: safemigrate / django" in result.stdout
    assert "Target: migrate / django" in result.stdout
    # Every sample of the three variants ran (one warm-up round, one measured).
    for variant in ("django", "migrate", "safemigrate"):
        assert result.stderr.count(f"  {variant} ") >= 2, result.stderr
