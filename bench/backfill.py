"""What does ``Backfill`` cost, and what does it spare production writes, against one UPDATE?

Every sample fills ``email_normalized = lower(email)`` on the same table of ``--rows`` rows
(``id bigint`` primary key, ``email varchar(100)``, ``email_normalized varchar(100) NULL``),
in a database copied from one template made at the start (rows inserted, then ``VACUUM
ANALYZE``), so every sample starts from identical files. A ``CHECKPOINT`` precedes each
sample. ``manage.py safemigrate`` then applies one migration, one of:

``update``
    ``RunSQL("UPDATE … SET email_normalized = lower(email) WHERE email_normalized IS NULL")``:
    one statement in one transaction (the step runner's transactional step).
``backfill-1000``, ``backfill-10000``
    ``Backfill("customer", set={"email_normalized": Lower("email")},
    where=Q(email_normalized__isnull=True), batch_size=N, throttle=0)``.

Both run under safemigrate's default timeouts (``lock_timeout`` 5 s, no
``statement_timeout``). While the command runs, a writer connection (``lock_timeout`` and
``statement_timeout`` 0, as an application's would usually be) repeats a single-row
``UPDATE customer SET email = email WHERE id = <random>`` every 10 ms and times each one: a
write that hits a row the migration has locked waits until that transaction commits, so the
longest write is the longest row-lock wait a production write actually felt. Only writes that
overlap the migration's data step count. Rows are picked uniformly: a write meets a locked
row only as often as the locked rows are a share of the table.

The child process runs ``manage.py safemigrate`` unchanged, except that it is instrumented
(the package is not edited): ``_Batches.batch`` (one backfill batch: its UPDATE and progress
row, one transaction) and ``StepRunner._run_step`` are wrapped in timers, and an execute
wrapper on the connection notes when a transaction's first ``UPDATE`` of the table starts.
"Longest batch" is the longest ``_Batches.batch`` call (its Python included), or for
``update`` its transactional step; "longest row-lock hold" runs from the start of that first
``UPDATE`` (its first row lock) to the end of the ``COMMIT`` that releases them all. A monitor
connection also polls ``pg_stat_activity`` every 20 ms, during the data step, for the oldest
transaction that has written (``backend_xid`` set): seen from outside, the age of a
transaction counts from its ``BEGIN``, which psycopg sends before it binds the UPDATE's
parameters, so it lies between the row-lock hold and the batch time.

Rounds run every variant once in a shuffled order; the table shows per-variant medians over the
rounds (each column's median on its own). After each sample the database is checked (migration
recorded, every row right), its table size recorded, and it is dropped; the template is dropped
at the end.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres python bench/backfill.py
    python bench/backfill.py --rows 50000 --rounds 1   # a quick try
    python bench/backfill.py --write                   # also rewrite BENCHMARKS.md's section
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import importlib.metadata
import json
import os
import platform
import random
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import psycopg
from psycopg import sql

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    admin,
    copy_database,
    cpu_model,
    create_database,
    drop_database,
    git_revision,
    percentile,
    redacted,
    reproduce_command,
    reproduce_lines,
    server_url,
    server_version,
    tail,
    update_benchmarks,
    with_database,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS_MD = REPO_ROOT / "BENCHMARKS.md"
SECTION_TITLE = "Backfill"
APP = "bfbench"
TABLE = f"{APP}_customer"
MIGRATION = f"{APP}.0002_fill"
WRITE_INTERVAL = 0.010
MONITOR_INTERVAL = 0.020
CHILD_TIMEOUT = 900.0


@dataclasses.dataclass(frozen=True)
class Variant:
    name: str
    label: str
    batch_size: int | None  # None: one plain UPDATE


VARIANTS = (
    Variant("update", "one `UPDATE` (`RunSQL`)", None),
    Variant("backfill-1000", "`Backfill`, batch_size=1000", 1000),
    Variant("backfill-10000", "`Backfill`, batch_size=10000", 10000),
)


class BenchmarkError(RuntimeError):
    """A sample failed or left a result that cannot be trusted; the benchmark stops."""


# --------------------------------------------------------------------------------------------
# The scenario app, written into a temporary directory per variant

MODELS = f"""\
from django.db import models


class Customer(models.Model):
    email = models.CharField(max_length=100)
    email_normalized = models.CharField(max_length=100, null=True)

    class Meta:
        app_label = "{APP}"
"""

INITIAL = """\
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True
    dependencies = []
    operations = [
        migrations.CreateModel(
            name="Customer",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("email", models.CharField(max_length=100)),
                ("email_normalized", models.CharField(max_length=100, null=True)),
            ],
        ),
    ]
"""

FILL_UPDATE = f"""\
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("{APP}", "0001_initial")]
    operations = [
        migrations.RunSQL(
            "UPDATE {TABLE} SET email_normalized = lower(email) "
            "WHERE email_normalized IS NULL",
            migrations.RunSQL.noop,
        ),
    ]
"""

FILL_BACKFILL = f"""\
from django.db import migrations
from django.db.models import Q
from django.db.models.functions import Lower

from django_safemigrate import Backfill


class Migration(migrations.Migration):
    dependencies = [("{APP}", "0001_initial")]
    operations = [
        Backfill(
            "customer",
            set={{"email_normalized": Lower("email")}},
            where=Q(email_normalized__isnull=True),
            batch_size=%d,
            throttle=0,
        ),
    ]
"""


def write_app(root: Path, variant: Variant) -> None:
    package = root / APP
    migrations = package / "migrations"
    migrations.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "models.py").write_text(MODELS)
    (migrations / "__init__.py").write_text("")
    (migrations / "0001_initial.py").write_text(INITIAL)
    fill = FILL_UPDATE if variant.batch_size is None else FILL_BACKFILL % variant.batch_size
    (migrations / "0002_fill.py").write_text(fill)


#: The child: ``manage.py ARGS`` as is, with batches and steps timed into ``BENCH_TIMINGS``.
#: ``hold`` runs from the moment the transaction's first UPDATE of the table leaves for the
#: server (after psycopg has bound its parameters: 10,000 of them take a while) to the end of
#: its COMMIT.
CHILD_SCRIPT = f"""\
import atexit, json, os, sys, time
import django

django.setup()
from django.core.management import ManagementUtility
from django.db import connection
from django_safemigrate.execution import backfill, runner
from psycopg._cursor_base import BaseCursor

records, first_update, pending = [], [None], [False]
atexit.register(lambda: open(os.environ["BENCH_TIMINGS"], "w").write(json.dumps(records)))
batch, run_step = backfill._Batches.batch, runner.StepRunner._run_step
convert = BaseCursor._convert_query

def note_update(execute, sql, params, many, context):
    if first_update[0] is None and sql.lstrip()[:6].upper() == "UPDATE" and "{TABLE}" in sql:
        pending[0] = True
    try:
        return execute(sql, params, many, context)
    finally:
        pending[0] = False

def timed_convert(self, *args, **kwargs):
    query = convert(self, *args, **kwargs)
    if pending[0] and first_update[0] is None:
        first_update[0] = time.perf_counter()  # the next thing psycopg does is send it
    return query

def hold(end):
    return None if first_update[0] is None else end - first_update[0]

def timed_batch(self, *args):
    started, first_update[0] = time.perf_counter(), None
    result = None
    try:
        result = batch(self, *args)
        return result
    finally:
        end = time.perf_counter()
        rows = result - args[-1] if result is not None else 0
        records.append({{"kind": "batch", "rows": rows, "seconds": end - started,
                         "hold": hold(end)}})

def timed_step(self, migration, step, *args, **kwargs):
    started, wall, first_update[0] = time.perf_counter(), time.time(), None
    try:
        return run_step(self, migration, step, *args, **kwargs)
    finally:
        end = time.perf_counter()
        records.append({{"kind": "step", "migration": f"{{migration.app_label}}.{{migration.name}}",
                         "step": step.kind.value, "start": wall, "seconds": end - started,
                         "hold": hold(end) if step.kind.value == "transactional" else None}})

connection.execute_wrappers.append(note_update)
BaseCursor._convert_query = timed_convert
backfill._Batches.batch = timed_batch
runner.StepRunner._run_step = timed_step
ManagementUtility(["manage.py", *sys.argv[1:]]).execute()
"""


def child_env(database_url: str, root: Path, timings: Path | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SAFEMIGRATE_", "SCENARIO_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="tests.scenario_settings",
        DATABASE_URL=database_url,
        SCENARIO_APPS=APP,
        SCENARIO_BASE_DIR=str(root),
        PYTHONPATH=os.pathsep.join([str(root), str(REPO_ROOT)]),
        PYTHONUNBUFFERED="1",
    )
    if timings is not None:
        env["BENCH_TIMINGS"] = str(timings)
    return env


def run_child(args: Sequence[str], env: dict[str, str], label: str) -> tuple[str, float]:
    """Run the child; return its stderr and wall-clock time, or stop the benchmark."""
    started = time.perf_counter()
    try:
        result = subprocess.run(
            [sys.executable, "-c", CHILD_SCRIPT, *args],
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=CHILD_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise BenchmarkError(f"{label}: no result within {CHILD_TIMEOUT:.0f}s.") from exc
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise BenchmarkError(
            f"{label}: exited {result.returncode}.\n--- stdout ---\n{tail(result.stdout)}\n"
            f"--- stderr ---\n{tail(result.stderr)}"
        )
    return result.stderr, elapsed


# --------------------------------------------------------------------------------------------
# The template database


def make_template(maintenance_url: str, name: str, rows: int, root: Path) -> None:
    """The schema (every app migrated up to bfbench 0001), ``rows`` rows, vacuumed."""
    create_database(maintenance_url, name)
    url = with_database(maintenance_url, name)
    app_root = root / "template"
    write_app(app_root, VARIANTS[0])
    run_child(
        ["safemigrate", APP, "0001", "--noinput"], child_env(url, app_root), "template: migrate"
    )
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            sql.SQL(
                "INSERT INTO {} (email) SELECT 'User' || i || '@Example.COM' "
                "FROM generate_series(1, %s) i"
            ).format(sql.Identifier(TABLE)),
            [rows],
        )
        conn.execute(sql.SQL("VACUUM (ANALYZE) {}").format(sql.Identifier(TABLE)))
    # Keep autovacuum workers out, so that copying it is never refused.
    admin(maintenance_url, sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS false").format(
        sql.Identifier(name)
    ))  # fmt: skip


def checkpoint(maintenance_url: str) -> None:
    """Start each sample with no dirty buffers left by the one before (needs superuser)."""
    with contextlib.suppress(psycopg.errors.InsufficientPrivilege):
        admin(maintenance_url, "CHECKPOINT")


# --------------------------------------------------------------------------------------------
# What runs beside the migration


class Writer(threading.Thread):
    """Single-row UPDATEs at random ids, no timeouts; (wall start, seconds) of each."""

    def __init__(self, url: str, rows: int, seed: int) -> None:
        super().__init__(daemon=True)
        self.url, self.rows, self.rng = url, rows, random.Random(seed)
        self.samples: list[tuple[float, float]] = []
        self.ready, self.stop = threading.Event(), threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        statement = sql.SQL("UPDATE {} SET email = email WHERE id = %s").format(
            sql.Identifier(TABLE)
        )
        try:
            with psycopg.connect(
                self.url, autocommit=True, application_name="bench writer"
            ) as conn:
                conn.execute("SET lock_timeout = 0")
                conn.execute("SET statement_timeout = 0")
                self.ready.set()
                while not self.stop.is_set():
                    key = self.rng.randint(1, self.rows)
                    wall, started = time.time(), time.perf_counter()
                    conn.execute(statement, [key])
                    self.samples.append((wall, time.perf_counter() - started))
                    self.stop.wait(WRITE_INTERVAL)
        except BaseException as exc:  # reported by the main thread
            self.error = exc
            self.ready.set()


class Monitor(threading.Thread):
    """The age of the oldest transaction that has written, polled from pg_stat_activity."""

    QUERY = """
        SELECT coalesce(max(extract(epoch FROM clock_timestamp() - xact_start)), 0)::float8
        FROM pg_stat_activity
        WHERE datname = current_database() AND backend_xid IS NOT NULL
          AND pid <> pg_backend_pid() AND application_name NOT LIKE 'bench %%'
    """

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.samples: list[tuple[float, float]] = []  # (time.time(), oldest writer's age)
        self.stop = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with psycopg.connect(
                self.url, autocommit=True, application_name="bench monitor"
            ) as conn:
                while not self.stop.is_set():
                    row = conn.execute(self.QUERY).fetchone()
                    self.samples.append((time.time(), float(row[0]) if row else 0.0))
                    self.stop.wait(MONITOR_INTERVAL)
        except BaseException as exc:  # reported by the main thread
            self.error = exc


# --------------------------------------------------------------------------------------------
# One sample


@dataclasses.dataclass(frozen=True)
class Sample:
    round: int
    variant: str
    total: float  # wall-clock of the safemigrate process
    step: float  # the data step (the backfill, or the UPDATE's transaction)
    rate: float  # rows / step
    writes: int  # writes overlapping the step
    write_max: float
    write_p99: float
    longest_txn: float  # timed in the child: the longest batch, or the UPDATE's transaction
    longest_hold: float  # timed in the child: first UPDATE of the table to the end of COMMIT
    longest_seen: float  # from pg_stat_activity (lower bound)
    batches: int
    in_batches: float  # share of the step spent inside batch transactions
    mean_batch: float
    before_send: float  # share of batch time before its UPDATE left for the server
    size_before: int
    size_after: int
    dead_after: int


def run_sample(
    maintenance_url: str, template: str, variant: Variant, *, round_no: int, rows: int, root: Path
) -> Sample:
    name = f"sm_bfbench_{os.getpid()}_{round_no}_{secrets.token_hex(3)}"
    label = f"round {round_no + 1} {variant.name} (database {name})"
    url = with_database(maintenance_url, name)
    app_root = root / name
    write_app(app_root, variant)
    timings = app_root / "timings.json"
    copy_database(maintenance_url, template, name)
    try:
        size_before = table_size(url)
        checkpoint(maintenance_url)
        writer, monitor = Writer(url, rows, seed=round_no), Monitor(url)
        writer.start()
        monitor.start()
        writer.ready.wait(30)
        try:
            stderr, total = run_child(
                ["safemigrate", "--noinput"], child_env(url, app_root, timings), label
            )
        finally:
            writer.stop.set()
            monitor.stop.set()
            writer.join()
            monitor.join()
        for thread in (writer, monitor):
            if thread.error is not None:
                raise BenchmarkError(f"{label}: {thread.name} failed: {thread.error}")
        records = json.loads(timings.read_text())
        steps = [r for r in records if r["kind"] == "step" and r["migration"] == MIGRATION]
        batch_records = [r for r in records if r["kind"] == "batch"]
        batches = [float(r["seconds"]) for r in batch_records]
        if not steps:
            raise BenchmarkError(f"{label}: {MIGRATION} ran no step.\n{tail(stderr)}")
        data = max(steps, key=lambda r: r["seconds"])
        start, seconds = float(data["start"]), float(data["seconds"])
        writes = [lat for at, lat in writer.samples if at < start + seconds and at + lat > start]
        longest = max(batches) if batches else seconds
        holds = [float(r["hold"]) for r in batch_records or [data] if r["hold"] is not None]
        if not holds:
            raise BenchmarkError(f"{label}: no UPDATE of {TABLE} was seen in a transaction.")
        check_result(url, rows, label)
        with psycopg.connect(url, autocommit=True) as conn:
            row = conn.execute(
                "SELECT n_dead_tup FROM pg_stat_user_tables WHERE relname = %s", [TABLE]
            ).fetchone()
        return Sample(
            round=round_no,
            variant=variant.name,
            total=total,
            step=seconds,
            rate=rows / seconds,
            writes=len(writes),
            write_max=max(writes, default=0.0),
            write_p99=percentile(writes, 0.99),
            longest_txn=longest,
            longest_hold=max(holds),
            longest_seen=max(
                (age for at, age in monitor.samples if start <= at <= start + seconds),
                default=0.0,
            ),
            batches=len(batches),
            in_batches=sum(batches) / seconds if batches else 1.0,
            mean_batch=statistics.mean(batches) if batches else seconds,
            before_send=before_send(batch_records),
            size_before=size_before,
            size_after=table_size(url),
            dead_after=int(row[0]) if row else 0,
        )
    finally:
        drop_database(maintenance_url, name)


def before_send(batches: Sequence[dict[str, float]]) -> float:
    """Share of batch time spent before the batch's UPDATE was sent (a lower bound)."""
    timed = [b for b in batches if b["hold"] is not None]
    total = sum(b["seconds"] for b in timed)
    return sum(b["seconds"] - b["hold"] for b in timed) / total if total else 0.0


def table_size(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT pg_total_relation_size(%s)", [TABLE]).fetchone()
    return int(row[0]) if row else 0


def check_result(url: str, rows: int, label: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        applied = conn.execute(
            "SELECT count(*) FROM django_migrations WHERE app = %s AND name = '0002_fill'", [APP]
        ).fetchone()
        wrong = conn.execute(
            sql.SQL(
                "SELECT count(*) FILTER (WHERE email_normalized IS DISTINCT FROM lower(email)), "
                "count(*) FROM {}"
            ).format(sql.Identifier(TABLE))
        ).fetchone()
    if not applied or applied[0] != 1 or not wrong or wrong[0] != 0 or wrong[1] != rows:
        raise BenchmarkError(
            f"{label}: the command exited 0, but the migration is recorded "
            f"{applied[0] if applied else 0} times and {wrong[0] if wrong else '?'} of "
            f"{wrong[1] if wrong else '?'} rows are wrong; the timing would mean nothing."
        )


# --------------------------------------------------------------------------------------------
# Results


@dataclasses.dataclass(frozen=True)
class Results:
    samples: list[Sample]
    rows: int
    rounds: int
    seed: int
    duration: float
    load_before: tuple[float, float, float]
    load_after: tuple[float, float, float]

    def median(self, variant: str, field: str) -> float:
        return statistics.median(
            float(getattr(s, field)) for s in self.samples if s.variant == variant
        )

    def spread(self, variant: str, field: str) -> tuple[float, float]:
        values = [float(getattr(s, field)) for s in self.samples if s.variant == variant]
        return min(values), max(values)


def seconds(value: float) -> str:
    if value >= 10:
        return f"{value:.1f} s"
    if value >= 1:
        return f"{value:.2f} s"
    return f"{value * 1000:.0f} ms"


def mebibytes(value: float) -> str:
    return f"{value / 2**20:.0f} MiB"


MEDIAN_FIELDS = (
    "total", "step", "rate", "writes", "write_max", "write_p99", "longest_txn", "longest_hold",
    "longest_seen", "size_after",
)  # fmt: skip


def results_table(results: Results) -> list[str]:
    lines = [
        "| variant | total | data step | rows/s | writes | write max | write p99 "
        "| longest batch | longest row-lock hold | (seen in pg_stat_activity) | table after |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for variant in VARIANTS:
        m = {field: results.median(variant.name, field) for field in MEDIAN_FIELDS}
        low, high = results.spread(variant.name, "total")
        lines.append(
            f"| {variant.label} | {seconds(m['total'])} ({seconds(low)} to {seconds(high)}) "
            f"| {seconds(m['step'])} | {m['rate']:,.0f} | {m['writes']:,.0f} "
            f"| {seconds(m['write_max'])} | {seconds(m['write_p99'])} "
            f"| {seconds(m['longest_txn'])} | {seconds(m['longest_hold'])} "
            f"| ≥ {seconds(m['longest_seen'])} | {mebibytes(m['size_after'])} |"
        )
    return lines


def print_sample(sample: Sample) -> None:
    print(
        f"round {sample.round + 1} {sample.variant:<15} total {sample.total:7.2f} s  "
        f"step {sample.step:7.2f} s  {sample.rate:9,.0f} rows/s  writes {sample.writes:5d}  "
        f"max {sample.write_max * 1000:8.1f} ms  p99 {sample.write_p99 * 1000:8.1f} ms  "
        f"longest txn {sample.longest_txn * 1000:7.1f} ms hold {sample.longest_hold * 1000:7.1f} "
        f"ms (seen {sample.longest_seen * 1000:.0f} ms)  batches {sample.batches}  "
        f"in batches {sample.in_batches:.0%} (mean {sample.mean_batch * 1000:.1f} ms, "
        f"{sample.before_send:.0%} before the UPDATE is sent)  "
        f"size {mebibytes(sample.size_before)} -> {mebibytes(sample.size_after)}, "
        f"{sample.dead_after:,} dead",
        file=sys.stderr,
        flush=True,
    )


def run_benchmark(maintenance_url: str, rows: int, rounds: int, seed: int) -> Results:
    rng = random.Random(seed)
    load_before = os.getloadavg()
    started = time.monotonic()
    template = f"sm_bfbench_tpl_{os.getpid()}_{secrets.token_hex(3)}"
    samples: list[Sample] = []
    with tempfile.TemporaryDirectory(prefix="sm_bfbench_") as tmp:
        root = Path(tmp)
        try:
            print(f"template database {template}: {rows:,} rows …", file=sys.stderr, flush=True)
            make_template(maintenance_url, template, rows, root)
            for round_no in range(rounds):
                order = list(VARIANTS)
                rng.shuffle(order)
                for variant in order:
                    sample = run_sample(
                        maintenance_url, template, variant, round_no=round_no, rows=rows, root=root
                    )
                    print_sample(sample)
                    samples.append(sample)
        finally:
            drop_database(maintenance_url, template)
    return Results(
        samples=samples,
        rows=rows,
        rounds=rounds,
        seed=seed,
        duration=time.monotonic() - started,
        load_before=load_before,
        load_after=os.getloadavg(),
    )


# --------------------------------------------------------------------------------------------
# BENCHMARKS.md


def section_text(results: Results, pg_version: str, command: str, revision: str) -> str:
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    load = "load average {:.2f} / {:.2f} / {:.2f} before, {:.2f} / {:.2f} / {:.2f} after".format(
        *results.load_before, *results.load_after
    )
    before = statistics.median(s.size_before for s in results.samples)
    update = "update"
    batched = [v.name for v in VARIANTS if v.batch_size]
    lines = [
        f"## {SECTION_TITLE}",
        "",
        f"`bench/backfill.py` fills `email_normalized = lower(email)` on a table of "
        f"{results.rows:,} rows (`id bigint` primary key, `email varchar(100)`, "
        "`email_normalized varchar(100) NULL`, all NULL) with `manage.py safemigrate` applying "
        "one migration: one `RunSQL` `UPDATE … WHERE email_normalized IS NULL` (one transaction), "
        'or `Backfill("customer", set={"email_normalized": Lower("email")}, '
        "where=Q(email_normalized__isnull=True), batch_size=…, throttle=0)`. safemigrate's "
        "default timeouts apply (`lock_timeout` 5 s, no `statement_timeout`). Each sample runs "
        "on a fresh copy of one template database (rows inserted, then `VACUUM ANALYZE`), after "
        "a `CHECKPOINT`; each round runs the variants once in a shuffled order.",
        "",
        "- total: wall-clock of the `safemigrate` process (start-up, plan, lock, ledger "
        "included); data step: the step that updates the rows; rows/s: rows / data step.",
        "- writes, write max, write p99: a concurrent writer (its own connection, no "
        "`lock_timeout`) repeats `UPDATE customer SET email = email WHERE id = <random>` every "
        "10 ms; latencies of the writes that overlap the data step. A write to a row the "
        "migration has locked waits until that transaction commits: the longest write is the "
        "longest row-lock wait production traffic felt. Rows are picked uniformly, so a write "
        "meets a batch's locked rows only about batch_size / rows of the time; the plain "
        "UPDATE's locks cover ever more of the table until its commit.",
        "- longest batch: timed inside the `safemigrate` process by wrapping `_Batches.batch` "
        "(one batch: its UPDATE and progress row, one transaction, with the Python that builds "
        "the query) or, for the UPDATE, its transactional step (`StepRunner._run_step`); the "
        "package is not edited. Longest row-lock hold: from the start of the transaction's "
        "first `UPDATE` of the table (an execute wrapper on the connection) to the end of its "
        "`COMMIT`, the longest any one transaction held row locks. The next column is seen "
        "from outside: the oldest transaction that had written (`backend_xid` set) in "
        "`pg_stat_activity`, polled every 20 ms during the data step; its age counts from "
        "`BEGIN`, which psycopg sends before binding the UPDATE's parameters.",
        f"- table after: `pg_total_relation_size` right after the command (before: "
        f"{mebibytes(before)}); autovacuum was left on.",
        "",
        "This run:",
        "",
        f"- Date: {now}; the whole run took {results.duration / 60:.1f} min",
        f"- Machine: {cpu_model()}, {os.cpu_count()} cores, {platform.system()} "
        f"{platform.release()}; shared with other work, {load}",
        f"- Python {platform.python_version()}, Django {importlib.metadata.version('Django')}, "
        f"psycopg {importlib.metadata.version('psycopg')}, PostgreSQL {pg_version}",
        f"- Code: {revision}",
        f"- Rounds: {results.rounds}, seed {results.seed}; medians over the rounds (each column "
        "on its own), total also with min to max",
        "",
        *results_table(results),
        "",
    ]
    ratio_rows = [
        f"`{name}` took {results.median(name, 'step') / results.median(update, 'step'):.2f} times "
        f"the UPDATE's data step, held row locks for at most "
        f"{seconds(results.median(name, 'longest_hold'))} at a time (the UPDATE: "
        f"{seconds(results.median(update, 'longest_hold'))}) and its longest write waited "
        f"{seconds(results.median(name, 'write_max'))} (the UPDATE's: "
        f"{seconds(results.median(update, 'write_max'))})"
        for name in batched
    ]
    shares = ", ".join(
        f"{results.median(name, 'before_send'):.0%} at batch_size {size}"
        for name, size in ((v.name, v.batch_size) for v in VARIANTS if v.batch_size)
    )
    lines += [
        "In short: " + "; ".join(ratio_rows) + ".",
        "",
        f"Of each batch's time, {shares} passed before its `UPDATE … WHERE id IN (…)` left for "
        "the server: Django building the `pk__in` filter over the batch's keys and psycopg "
        "binding as many parameters, client-side (no row is locked yet, but it is time not "
        "spent updating).",
        "",
        *reproduce_lines(command),
        "",
    ]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python bench/backfill.py",
        description="Compare Backfill (batch sizes 1000 and 10000) with one plain UPDATE on "
        "the same table: time, rows/s, and how long a concurrent writer waited.",
    )
    parser.add_argument(
        "--rows", type=int, default=1_000_000, help="rows in the table (default: 1,000,000)"
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="rounds of all variants (default: 3; medians)"
    )
    parser.add_argument(
        "--seed", type=int, default=None, help="seed of the per-round order (default: random)"
    )
    parser.add_argument(
        "--write",
        action="store_true",
        help=f"rewrite the '{SECTION_TITLE}' section of {BENCHMARKS_MD.name}",
    )
    args = parser.parse_args(argv)
    if args.rows < 1 or args.rounds < 1:
        parser.error("--rows and --rounds must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    given_url = os.environ.get("DATABASE_URL")
    maintenance_url = server_url("bench/backfill.py")
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1_000_000)
    pg_version = server_version(maintenance_url)
    revision = git_revision()
    print(
        f"PostgreSQL {pg_version} at {redacted(maintenance_url)}; {args.rows:,} rows, "
        f"{args.rounds} rounds of {', '.join(v.name for v in VARIANTS)}, seed {seed}",
        file=sys.stderr,
    )
    try:
        results = run_benchmark(maintenance_url, args.rows, args.rounds, seed)
    except BenchmarkError as exc:
        print(f"\nbench/backfill.py stopped: {exc}", file=sys.stderr)
        return 1
    print()
    print(*results_table(results), sep="\n")
    print(f"\nThe run took {results.duration / 60:.1f} min.")
    if args.write:
        words = ["--rows", str(args.rows), "--rounds", str(args.rounds), "--seed", str(seed)]
        command = reproduce_command("bench/backfill.py", [*words, "--write"], given_url)
        update_benchmarks(
            BENCHMARKS_MD, SECTION_TITLE, section_text(results, pg_version, command, revision)
        )
        print(f"Rewrote the '{SECTION_TITLE}' section of {BENCHMARKS_MD}.", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
