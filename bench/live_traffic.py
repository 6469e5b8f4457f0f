"""What does live traffic see while a migration runs on a big, busy table?

A scenario app (written into a temporary directory) has a table ``livebench_item`` of
``--rows`` rows (default 2,000,000) and a small ``livebench_category``. A template database
holds every app migrated and the rows, filled with one ``INSERT … SELECT generate_series``;
each sample runs on a fresh copy of it (``CREATE DATABASE … TEMPLATE``), so every sample
starts from the same data. One migration is left to apply, which depends on the scenario:

``AddIndex``, ``AddIndexConcurrently``, ``AddFieldNotNull`` (``IntegerField(default=0)``),
``AlterFieldBigint`` (``IntegerField`` to ``BigIntegerField``), ``CheckConstraint``,
``ForeignKey`` (nullable, to the small table), ``UniqueConstraint``, ``AlterFieldNotNull``
(a nullable ``CharField`` made ``null=False``; every row has a value).

While it runs, a load generator of ``--threads`` threads (default 8), each on its own
psycopg connection in autocommit (opened as Django's backend opens one by default: client-side
binding, no prepared statements), sends ``--rate`` queries per second in total (default 800),
paced open loop (each query has a due time; one that fell due while its thread was stuck is
sent as soon as the thread is free): in turn a primary-key ``SELECT`` of the columns the old
code knows, a primary-key ``UPDATE``, and an ``INSERT`` written as the old code writes it,
naming only the columns that existed before the migration. Every query's latency and every
failure (with its error) is recorded with its due time.

With ``--reader with``, a transaction opens ``START_DELAY`` seconds before the migration
starts, reads one row of the table (``BEGIN; SELECT … LIMIT 1``: it holds ACCESS SHARE) and
rolls back ``--hold`` seconds (default 5) after it opened, as a report query or a slow
request would. ``--reader without`` has none; ``both`` (the default) runs each scenario both
ways.

Variants, applying the same migration file through ``manage.py`` in a child process:

``migrate``
    Django's own ``migrate``: a settings module without django_safemigrate in
    ``INSTALLED_APPS`` (so no override, no lock timeout).
``safemigrate``
    ``manage.py safemigrate`` with django_safemigrate installed and no ``SAFEMIGRATE``
    setting: every default.
``safemigrate-zdm``
    The same with ``django_zero_downtime_migrations.backends.postgres`` as the ``ENGINE``
    (its own settings left at their defaults).

For each (scenario, reader, variant): the baseline p50 and p99 latency of the queries due
before the migration started, the p99 of those due while it ran (from when they were due, so
a query that waited behind a stuck one counts its wait), the longest single query (from when
it was sent), the queries that failed from the migration's start to the end of the sample
(``--seconds-after`` past the migration, so that old-code INSERTs failing against a new
column are seen), the migration's wall-clock and its exit code. The targets are judged per
row: without the reader, p99 during at most 1.5 times the baseline p99 or the baseline p99
plus 10 ms (the larger), no failed query, no query longer than 150 ms; with the reader, no
failed query, no query longer than the first lock timeout (``--first-lock-timeout``, default
0.1 s: the short first attempt of a lock-retry schedule) plus 100 ms, and the deploy
completes (exit 0, the migration applied).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres python bench/live_traffic.py
    python bench/live_traffic.py --rows 100000 --scenarios AddIndex,AlterFieldBigint
    python bench/live_traffic.py --write   # also rewrite BENCHMARKS.md's section
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import enum
import importlib.metadata
import os
import platform
import random
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Mapping, Sequence
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
    output_tails,
    percentile,
    redacted,
    reproduce_command,
    reproduce_lines,
    server_url,
    server_version,
    update_benchmarks,
    with_database,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS_MD = REPO_ROOT / "BENCHMARKS.md"
SECTION_TITLE = "Live traffic"
SCRIPT = "bench/live_traffic.py"
APP = "livebench"
TABLE = f"{APP}_item"
CATEGORY_TABLE = f"{APP}_category"
CATEGORIES = 20
START_DELAY = 0.2  # seconds between the reader's read and the migration's start
# Seconds of traffic before the baseline window opens: on a fresh copy of a big table the
# first second's queries sometimes stall for tens of milliseconds together (the new
# database's caches filling), which would inflate the baseline the targets are judged by.
WARMUP = 1.0
CHILD_TIMEOUT = 1800.0
JOIN_TIMEOUT = 120.0
# The targets.
P99_FACTOR = 1.5
P99_SLACK = 0.010
MAX_WAIT = 0.150
READER_SLACK = 0.100


class BenchmarkError(RuntimeError):
    """A sample failed or left a result that cannot be trusted; the benchmark stops."""


# --------------------------------------------------------------------------------------------
# The scenario app

# Columns of the model before the migration, with the field each scenario starts from.
BASE_FIELDS: Mapping[str, str] = {
    "name": "models.CharField(max_length=100)",
    "qty": "models.IntegerField()",
    "note": "models.CharField(max_length=100, null=True)",
    "code": "models.CharField(max_length=32)",
}
# The columns the old code names in its queries.
OLD_COLUMNS = tuple(BASE_FIELDS)


@dataclasses.dataclass(frozen=True)
class Scenario:
    name: str
    migration: str  # the migration's name (after 0001_initial)
    operation: str  # Python source of the one operation
    fields: Mapping[str, str]  # the model's fields after it (added or changed)
    meta: str  # Python source of extra Meta lines after it
    applied: str  # SQL counting 1 when the migration's effect is in the catalogs
    atomic: bool = True
    imports: str = ""


QTY_INDEX = f"{APP}_item_qty_idx"
INDEX_META = f'indexes = [models.Index(fields=["qty"], name="{QTY_INDEX}")]'
INDEX_APPLIED = (
    "SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
    f"WHERE c.relname = '{QTY_INDEX}' AND i.indisvalid"
)


def column_applied(column: str, condition: str) -> str:
    return (
        f"SELECT count(*) FROM pg_attribute WHERE attrelid = '{TABLE}'::regclass "
        f"AND attname = '{column}' AND NOT attisdropped AND {condition}"
    )


def constraint_applied(condition: str) -> str:
    return (
        f"SELECT count(*) FROM pg_constraint WHERE conrelid = '{TABLE}'::regclass "
        f"AND convalidated AND {condition}"
    )


SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        name="AddIndex",
        migration="0002_item_qty_idx",
        operation=f'migrations.AddIndex("item", models.Index(fields=["qty"], name="{QTY_INDEX}"))',
        fields={},
        meta=INDEX_META,
        applied=INDEX_APPLIED,
    ),
    Scenario(
        name="AddIndexConcurrently",
        migration="0002_item_qty_idx_concurrently",
        operation=(
            f'AddIndexConcurrently("item", models.Index(fields=["qty"], name="{QTY_INDEX}"))'
        ),
        fields={},
        meta=INDEX_META,
        applied=INDEX_APPLIED,
        atomic=False,
        imports="from django.contrib.postgres.operations import AddIndexConcurrently\n",
    ),
    Scenario(
        name="AddFieldNotNull",
        migration="0002_item_flag",
        operation='migrations.AddField("item", "flag", models.IntegerField(default=0))',
        fields={"flag": "models.IntegerField(default=0)"},
        meta="",
        applied=column_applied("flag", "attnotnull"),
    ),
    Scenario(
        name="AlterFieldBigint",
        migration="0002_item_qty_bigint",
        operation='migrations.AlterField("item", "qty", models.BigIntegerField())',
        fields={"qty": "models.BigIntegerField()"},
        meta="",
        applied=column_applied("qty", "atttypid = 'bigint'::regtype"),
    ),
    Scenario(
        name="CheckConstraint",
        migration="0002_item_qty_gte_0",
        operation=(
            'migrations.AddConstraint("item", models.CheckConstraint('
            f'condition=models.Q(qty__gte=0), name="{APP}_item_qty_gte_0"))'
        ),
        fields={},
        meta=(
            "constraints = [models.CheckConstraint("
            f'condition=models.Q(qty__gte=0), name="{APP}_item_qty_gte_0")]'
        ),
        applied=constraint_applied(f"conname = '{APP}_item_qty_gte_0'"),
    ),
    Scenario(
        name="ForeignKey",
        migration="0002_item_category",
        operation=(
            'migrations.AddField("item", "category", models.ForeignKey('
            f'"{APP}.category", null=True, on_delete=models.SET_NULL))'
        ),
        fields={
            "category": ('models.ForeignKey("Category", null=True, on_delete=models.SET_NULL)')
        },
        meta="",
        applied=constraint_applied("contype = 'f'"),
    ),
    Scenario(
        name="UniqueConstraint",
        migration="0002_item_code_uniq",
        operation=(
            'migrations.AddConstraint("item", models.UniqueConstraint('
            f'fields=["code"], name="{APP}_item_code_uniq"))'
        ),
        fields={},
        meta=(
            f'constraints = [models.UniqueConstraint(fields=["code"], name="{APP}_item_code_uniq")]'
        ),
        applied=constraint_applied(f"conname = '{APP}_item_code_uniq' AND contype = 'u'"),
    ),
    Scenario(
        name="AlterFieldNotNull",
        migration="0002_item_note_not_null",
        operation='migrations.AlterField("item", "note", models.CharField(max_length=100))',
        fields={"note": "models.CharField(max_length=100)"},
        meta="",
        applied=column_applied("note", "attnotnull"),
    ),
)
SCENARIO_NAMES = tuple(s.name for s in SCENARIOS)

BASE_FIELD_LINES = "".join(f'                ("{k}", {v}),\n' for k, v in BASE_FIELDS.items())
INITIAL = f"""\
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True
    dependencies = []
    operations = [
        migrations.CreateModel(
            name="Category",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("name", models.CharField(max_length=50)),
            ],
        ),
        migrations.CreateModel(
            name="Item",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
{BASE_FIELD_LINES}\
            ],
        ),
    ]
"""


def models_source(scenario: Scenario | None) -> str:
    fields = dict(BASE_FIELDS)
    if scenario is not None:
        fields.update(scenario.fields)
    meta = f"        {scenario.meta}\n" if scenario is not None and scenario.meta else ""
    return (
        "from django.db import models\n\n\n"
        "class Category(models.Model):\n"
        "    name = models.CharField(max_length=50)\n\n"
        "    class Meta:\n"
        f'        app_label = "{APP}"\n\n\n'
        "class Item(models.Model):\n"
        + "".join(f"    {name} = {field}\n" for name, field in fields.items())
        + "\n    class Meta:\n"
        f'        app_label = "{APP}"\n' + meta
    )


def migration_source(scenario: Scenario) -> str:
    atomic = "" if scenario.atomic else "    atomic = False\n"
    return (
        f"{scenario.imports}from django.db import migrations, models\n\n\n"
        "class Migration(migrations.Migration):\n"
        f"{atomic}"
        f'    dependencies = [("{APP}", "0001_initial")]\n'
        f"    operations = [{scenario.operation}]\n"
    )


SETTINGS = """\
import os

import dj_database_url

SECRET_KEY = "live-traffic-benchmark-only"
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
BASE_DIR = os.environ["LIVEBENCH_BASE_DIR"]
DATABASES = {"default": dj_database_url.parse(os.environ["DATABASE_URL"])}
if os.environ.get("LIVEBENCH_ENGINE"):
    DATABASES["default"]["ENGINE"] = os.environ["LIVEBENCH_ENGINE"]
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    *(["django_safemigrate"] if os.environ.get("LIVEBENCH_SAFEMIGRATE") == "1" else []),
    "livebench",
]
"""


def write_app(root: Path, scenario: Scenario | None) -> None:
    """The app ``livebench`` under ``root``: 0001, and the scenario's migration if any."""
    package = root / APP
    migrations = package / "migrations"
    migrations.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "models.py").write_text(models_source(scenario))
    (migrations / "__init__.py").write_text("")
    (migrations / "0001_initial.py").write_text(INITIAL)
    if scenario is not None:
        (migrations / f"{scenario.migration}.py").write_text(migration_source(scenario))


def write_project(tmp: Path, scenarios: Sequence[Scenario]) -> None:
    (tmp / "livebench_settings.py").write_text(SETTINGS)
    write_app(tmp / "base", None)
    for scenario in scenarios:
        write_app(tmp / scenario.name, scenario)


# --------------------------------------------------------------------------------------------
# Variants and their child processes


@dataclasses.dataclass(frozen=True)
class Variant:
    name: str
    label: str
    command: str  # the manage.py command
    safemigrate: bool  # django_safemigrate in INSTALLED_APPS
    engine: str = ""  # ENGINE override; "" keeps django.db.backends.postgresql
    first_lock_timeout: str = "none"  # as documented today, for the section's text


VARIANTS: tuple[Variant, ...] = (
    Variant(
        "migrate",
        "Django's `migrate`",
        "migrate",
        safemigrate=False,
    ),
    Variant(
        "safemigrate",
        "`safemigrate`",
        "safemigrate",
        safemigrate=True,
        first_lock_timeout="5 s",
    ),
    Variant(
        "safemigrate-zdm",
        "`safemigrate`, ZDM backend",
        "safemigrate",
        safemigrate=True,
        engine="django_zero_downtime_migrations.backends.postgres",
        first_lock_timeout="5 s",
    ),
)
VARIANT_NAMES = tuple(v.name for v in VARIANTS)


def child_env(database_url: str, tmp: Path, app_root: Path, variant: Variant) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SAFEMIGRATE", "SCENARIO_", "LIVEBENCH_", "DJANGO_", "ZERO_"))
    }
    env.update(
        DJANGO_SETTINGS_MODULE="livebench_settings",
        DATABASE_URL=database_url,
        LIVEBENCH_BASE_DIR=str(app_root),
        LIVEBENCH_SAFEMIGRATE="1" if variant.safemigrate else "0",
        LIVEBENCH_ENGINE=variant.engine,
        PYTHONPATH=os.pathsep.join([str(tmp), str(app_root), str(REPO_ROOT)]),
        PYTHONUNBUFFERED="1",
    )
    return env


def run_child(
    args: Sequence[str], env: dict[str, str], label: str
) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            [sys.executable, str(REPO_ROOT / "manage.py"), *args],
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=CHILD_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise BenchmarkError(f"{label}: no result within {CHILD_TIMEOUT:.0f} s.") from exc


# --------------------------------------------------------------------------------------------
# The template database


def make_template(maintenance_url: str, name: str, tmp: Path, rows: int) -> float:
    """Every app migrated, livebench up to 0001, ``rows`` items; returns the fill time."""
    create_database(maintenance_url, name)
    url = with_database(maintenance_url, name)
    safemigrate = next(v for v in VARIANTS if v.name == "safemigrate")
    result = run_child(
        ["safemigrate", "--noinput"],
        child_env(url, tmp, tmp / "base", safemigrate),
        "template: safemigrate",
    )
    if result.returncode != 0:
        raise BenchmarkError(
            f"template: safemigrate exited {result.returncode}.\n{output_tails(result)}"
        )
    started = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("INSERT INTO {} (name) SELECT 'category ' || i FROM generate_series(1, %s) i")
            .format(sql.Identifier(CATEGORY_TABLE)),
            [CATEGORIES],
        )  # fmt: skip
        # Every row has a note (AlterFieldNotNull can apply), a distinct code (the unique
        # constraint can apply) and a non-negative qty (the check constraint can apply).
        conn.execute(
            sql.SQL(
                "INSERT INTO {} (name, qty, note, code) "
                "SELECT 'item ' || i, i %% 1000, 'note ' || i, 'c' || i "
                "FROM generate_series(1, %s) i"
            ).format(sql.Identifier(TABLE)),
            [rows],
        )
        conn.execute(sql.SQL("VACUUM (ANALYZE) {}").format(sql.Identifier(TABLE)))
        conn.execute(sql.SQL("VACUUM (ANALYZE) {}").format(sql.Identifier(CATEGORY_TABLE)))
    admin(maintenance_url, sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS false").format(
        sql.Identifier(name)
    ))  # fmt: skip
    return time.perf_counter() - started


# --------------------------------------------------------------------------------------------
# The traffic


class Kind(enum.Enum):
    SELECT = "SELECT"
    UPDATE = "UPDATE"
    INSERT = "INSERT"


@dataclasses.dataclass(frozen=True)
class Query:
    kind: Kind
    due: float  # perf_counter when the query was due
    sent: float  # perf_counter when it was sent
    done: float  # perf_counter when its answer (or error) came
    error: str | None  # the exception's class name (psycopg.errors names the SQLSTATE)

    @property
    def from_due(self) -> float:
        return self.done - self.due

    @property
    def wait(self) -> float:
        return self.done - self.sent


COLUMNS = sql.SQL(", ").join(sql.Identifier(c) for c in OLD_COLUMNS)
SELECT = sql.SQL("SELECT id, {} FROM {} WHERE id = %s").format(COLUMNS, sql.Identifier(TABLE))
UPDATE = sql.SQL("UPDATE {} SET qty = qty + 1 WHERE id = %s").format(sql.Identifier(TABLE))
# The old code's INSERT: the columns it knows, nothing the migration adds.
INSERT = sql.SQL("INSERT INTO {} ({}) VALUES (%s, %s, %s, %s) RETURNING id").format(
    sql.Identifier(TABLE), COLUMNS
)


class Worker(threading.Thread):
    """One connection sending SELECT, UPDATE and INSERT in turn, one due every ``interval``."""

    def __init__(
        self, url: str, index: int, *, interval: float, offset: float, rows: int, seed: int
    ) -> None:
        super().__init__(daemon=True, name=f"load {index}")
        self.url, self.index, self.interval, self.offset = url, index, interval, offset
        self.rows = rows
        self.rng = random.Random(seed)
        self.queries: list[Query] = []
        self.ready = threading.Event()
        self.go = threading.Event()
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.start_at = 0.0

    def run(self) -> None:
        kinds = (Kind.SELECT, Kind.UPDATE, Kind.INSERT)
        try:
            conn = self.connect()
            try:
                self.ready.set()
                self.go.wait()
                due = self.start_at + self.offset
                turn = self.index
                while not self.stop.is_set():
                    pause = due - time.perf_counter()
                    if pause > 0:
                        self.stop.wait(pause)
                        if self.stop.is_set():
                            break
                    kind = kinds[turn % 3]
                    turn += 1
                    sent = time.perf_counter()
                    error: str | None = None
                    try:
                        self.send(conn, kind, turn)
                    except psycopg.Error as exc:
                        error = type(exc).__name__
                        if conn.closed:
                            conn = self.connect()
                    self.queries.append(Query(kind, due, sent, time.perf_counter(), error))
                    due += self.interval
            finally:
                conn.close()
        except BaseException as exc:  # reported by the main thread
            self.error = exc
            self.ready.set()

    def connect(self) -> psycopg.Connection[tuple[object, ...]]:
        """A connection as Django's PostgreSQL backend opens one by default.

        Client-side parameter binding and no server-side prepared statements: with psycopg's
        automatic preparation, a column's type change would fail the old code's prepared
        SELECT with "cached plan must not change result type", which a Django application
        never sees.
        """
        return psycopg.connect(
            self.url,
            autocommit=True,
            application_name=f"bench load {self.index}",
            prepare_threshold=None,
            cursor_factory=psycopg.ClientCursor,
        )

    def send(self, conn: psycopg.Connection[tuple[object, ...]], kind: Kind, turn: int) -> None:
        if kind is Kind.SELECT:
            conn.execute(SELECT, [self.rng.randint(1, self.rows)]).fetchone()
        elif kind is Kind.UPDATE:
            conn.execute(UPDATE, [self.rng.randint(1, self.rows)])
        else:
            code = f"t{self.index}-{turn}-{secrets.token_hex(4)}"
            conn.execute(INSERT, ["new item", self.rng.randint(0, 999), "new note", code])


class Load:
    """``threads`` workers sending ``rate`` queries per second in total."""

    def __init__(self, url: str, threads: int, rate: float, rows: int, seed: int) -> None:
        interval = threads / rate
        self.workers = [
            Worker(
                url,
                i,
                interval=interval,
                offset=interval * i / threads,
                rows=rows,
                seed=seed * 1000 + i,
            )
            for i in range(threads)
        ]

    def start(self) -> float:
        for worker in self.workers:
            worker.start()
        for worker in self.workers:
            if not worker.ready.wait(30):
                raise BenchmarkError("a load connection did not open within 30 s")
            if worker.error is not None:
                raise BenchmarkError(f"a load connection failed: {worker.error}")
        start_at = time.perf_counter() + 0.05
        for worker in self.workers:
            worker.start_at = start_at
            worker.go.set()
        return start_at

    def stop(self) -> list[Query]:
        for worker in self.workers:
            worker.stop.set()
            worker.go.set()
        queries: list[Query] = []
        for worker in self.workers:
            worker.join(JOIN_TIMEOUT)
            if worker.is_alive():
                raise BenchmarkError(
                    f"{worker.name} still waits on a query {JOIN_TIMEOUT:.0f} s on"
                )
            if worker.error is not None:
                raise BenchmarkError(f"{worker.name} failed: {worker.error!r}")
            queries.extend(worker.queries)
        return queries


# --------------------------------------------------------------------------------------------
# One sample


@dataclasses.dataclass(frozen=True)
class Sample:
    scenario: str
    reader: bool
    variant: str
    baseline_p50: float
    baseline_p99: float
    during_p99: float
    max_wait: float  # the longest single query, from sending it, migration start to end
    failures: Mapping[str, int]  # error class name -> count, same window
    migration: float  # the child's wall-clock
    exit_code: int
    applied: bool
    message: str  # the last line of a failed command's stderr ("" when it exited 0)

    @property
    def failed(self) -> int:
        return sum(self.failures.values())


@dataclasses.dataclass(frozen=True)
class Options:
    rows: int
    threads: int
    rate: float
    hold: float
    seconds_before: float
    seconds_after: float
    first_lock_timeout: float


def run_sample(
    maintenance_url: str,
    template: str,
    tmp: Path,
    scenario: Scenario,
    variant: Variant,
    *,
    reader: bool,
    options: Options,
    seed: int,
) -> Sample:
    name = f"sm_livebench_{os.getpid()}_{secrets.token_hex(4)}"
    label = f"{scenario.name} {'with' if reader else 'without'} reader, {variant.name}"
    url = with_database(maintenance_url, name)
    copy_database(maintenance_url, template, name)
    try:
        load = Load(url, options.threads, options.rate, options.rows, seed)
        load_start = load.start()
        blocker: psycopg.Connection[tuple[object, ...]] | None = None
        release: threading.Timer | None = None
        try:
            time.sleep(WARMUP + options.seconds_before)
            baseline_end = time.perf_counter()
            if reader:
                blocker = psycopg.connect(url, application_name="bench reader")
                # psycopg opens the transaction implicitly: BEGIN; SELECT … LIMIT 1, kept open.
                blocker.execute(sql.SQL("SELECT * FROM {} LIMIT 1").format(sql.Identifier(TABLE)))
                release = threading.Timer(options.hold, blocker.rollback)
                release.start()
                time.sleep(START_DELAY)
            started = time.perf_counter()
            result = run_child(
                [variant.command, "--noinput"],
                child_env(url, tmp, tmp / scenario.name, variant),
                label,
            )
            ended = time.perf_counter()
            if release is not None:
                release.join()
            time.sleep(options.seconds_after)
        finally:
            if release is not None:
                release.cancel()
            if blocker is not None:
                blocker.close()
            queries = load.stop()
        applied = migration_applied(url, scenario)
    finally:
        drop_database(maintenance_url, name)
    if result.returncode == 0 and not applied:
        raise BenchmarkError(
            f"{label}: the command exited 0 but the migration is not applied and recorded "
            f"exactly once; the figures would mean nothing.\n{output_tails(result)}"
        )
    if result.returncode != 0:
        print(f"{label}: exit {result.returncode}\n{output_tails(result, 40)}", file=sys.stderr)
    baseline = [q.from_due for q in queries if load_start + WARMUP <= q.due < baseline_end]
    during = [q for q in queries if started <= q.due <= ended]
    since = [q for q in queries if q.due >= started]
    return Sample(
        scenario=scenario.name,
        reader=reader,
        variant=variant.name,
        baseline_p50=percentile(baseline, 0.50),
        baseline_p99=percentile(baseline, 0.99),
        during_p99=percentile([q.from_due for q in during], 0.99),
        max_wait=max(
            (q.wait for q in queries if q.done >= started and q.sent <= ended), default=0.0
        ),
        failures=dict(Counter(q.error for q in since if q.error is not None)),
        migration=ended - started,
        exit_code=result.returncode,
        applied=applied,
        message=last_line(result.stderr) if result.returncode != 0 else "",
    )


def last_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[-1].strip() if lines else "(nothing on stderr)"


def migration_applied(url: str, scenario: Scenario) -> bool:
    with psycopg.connect(url, autocommit=True) as conn:
        recorded = conn.execute(
            "SELECT count(*) FROM django_migrations WHERE app = %s AND name = %s",
            [APP, scenario.migration],
        ).fetchone()
        effect = conn.execute(scenario.applied.encode()).fetchone()
    return bool(recorded and recorded[0] == 1 and effect and effect[0] == 1)


# --------------------------------------------------------------------------------------------
# Targets


class Verdict(enum.Enum):
    MET = "met"
    NOT_MET = "not met"
    NONE = "n/a"  # no target for this row


@dataclasses.dataclass(frozen=True)
class Judgement:
    p99: Verdict
    failed: Verdict
    wait: Verdict
    completes: Verdict

    @property
    def all_met(self) -> bool:
        return all(v is not Verdict.NOT_MET for v in dataclasses.astuple(self))


def judge(sample: Sample, first_lock_timeout: float) -> Judgement:
    def verdict(ok: bool) -> Verdict:
        return Verdict.MET if ok else Verdict.NOT_MET

    completes = verdict(sample.exit_code == 0 and sample.applied)
    failed = verdict(sample.failed == 0)
    if sample.reader:
        return Judgement(
            p99=Verdict.NONE,
            failed=failed,
            wait=verdict(sample.max_wait <= first_lock_timeout + READER_SLACK),
            completes=completes,
        )
    p99_bound = max(sample.baseline_p99 * P99_FACTOR, sample.baseline_p99 + P99_SLACK)
    return Judgement(
        p99=verdict(sample.during_p99 <= p99_bound),
        failed=failed,
        wait=verdict(sample.max_wait <= MAX_WAIT),
        completes=completes,
    )


# --------------------------------------------------------------------------------------------
# Results


def ms(value: float) -> str:
    if value >= 10:
        return f"{value:.1f} s"
    if value >= 1:
        return f"{value:.2f} s"
    if value >= 0.01:
        return f"{value * 1000:.0f} ms"
    return f"{value * 1000:.1f} ms"


def failures_text(sample: Sample) -> str:
    if not sample.failures:
        return "0"
    detail = ", ".join(f"{n} {name}" for name, n in sorted(sample.failures.items()))
    return f"**{sample.failed}** ({detail})"


def results_table(samples: Sequence[Sample], options: Options) -> list[str]:
    labels = {v.name: v.label for v in VARIANTS}
    lines = [
        "| scenario | reader | variant | baseline p50 | baseline p99 | p99 during | max wait "
        "| failed | migration | exit | p99 target | 0 failed | wait target | completes |",
        "|---|---|---|--:|--:|--:|--:|---|--:|--:|---|---|---|---|",
    ]
    for s in samples:
        j = judge(s, options.first_lock_timeout)
        reader = f"{options.hold:g} s reader" if s.reader else "none"
        lines.append(
            f"| {s.scenario} | {reader} | {labels[s.variant]} "
            f"| {ms(s.baseline_p50)} | {ms(s.baseline_p99)} | {ms(s.during_p99)} "
            f"| {ms(s.max_wait)} | {failures_text(s)} | {ms(s.migration)} | {s.exit_code} "
            f"| {j.p99.value} | {j.failed.value} | {j.wait.value} | {j.completes.value} |"
        )
    return lines


def failed_deploys(samples: Sequence[Sample]) -> list[str]:
    """A list of the samples whose command failed, with the last line it wrote."""
    labels = {v.name: v.label for v in VARIANTS}
    failed = [s for s in samples if s.exit_code != 0]
    if not failed:
        return []
    lines = ["Commands that failed (the last line of their stderr):", ""]
    for s in failed:
        message = s.message if len(s.message) <= 300 else s.message[:297] + "..."
        message = message.replace("`", "'")  # keeps the Markdown list item whole
        lines.append(
            f"- {s.scenario}, {'with' if s.reader else 'without'} the reader, "
            f"{labels[s.variant]}: exit {s.exit_code}: {message}"
        )
    return [*lines, ""]


def print_sample(sample: Sample, first_lock_timeout: float) -> None:
    j = judge(sample, first_lock_timeout)
    print(
        f"{sample.scenario:<20} {'reader' if sample.reader else 'none  '} {sample.variant:<15} "
        f"base p50 {ms(sample.baseline_p50):>7} p99 {ms(sample.baseline_p99):>7}  "
        f"during p99 {ms(sample.during_p99):>7}  max wait {ms(sample.max_wait):>7}  "
        f"failed {sample.failed:4d}  migration {ms(sample.migration):>7}  "
        f"exit {sample.exit_code}  targets {'met' if j.all_met else 'not met'}",
        file=sys.stderr,
        flush=True,
    )


@dataclasses.dataclass(frozen=True)
class Results:
    samples: list[Sample]
    seed: int
    fill: float  # seconds to fill the template's table
    duration: float
    load_before: tuple[float, float, float]
    load_after: tuple[float, float, float]


def run_benchmark(
    maintenance_url: str,
    *,
    scenarios: Sequence[Scenario],
    variants: Sequence[Variant],
    readers: Sequence[bool],
    options: Options,
    seed: int,
) -> Results:
    rng = random.Random(seed)
    load_before = os.getloadavg()
    started = time.monotonic()
    template = f"sm_livebench_tpl_{os.getpid()}_{secrets.token_hex(3)}"
    samples: list[Sample] = []
    with tempfile.TemporaryDirectory(prefix="sm_livebench_") as tmp_name:
        tmp = Path(tmp_name)
        write_project(tmp, scenarios)
        try:
            fill = make_template(maintenance_url, template, tmp, options.rows)
            print(f"template: {options.rows:,} rows in {fill:.1f} s", file=sys.stderr)
            for scenario in scenarios:
                for reader in readers:
                    # Every variant of one (scenario, reader) back to back in a shuffled
                    # order, so that drift on a shared machine hits them alike.
                    order = list(variants)
                    rng.shuffle(order)
                    for variant in order:
                        sample = run_sample(
                            maintenance_url,
                            template,
                            tmp,
                            scenario,
                            variant,
                            reader=reader,
                            options=options,
                            seed=rng.randrange(1_000_000),
                        )
                        print_sample(sample, options.first_lock_timeout)
                        samples.append(sample)
        finally:
            drop_database(maintenance_url, template)
    key = {(s.name, r, v.name): i for i, (s, r, v) in enumerate(
        (s, r, v) for s in scenarios for r in readers for v in variants
    )}  # fmt: skip
    samples.sort(key=lambda s: key[(s.scenario, s.reader, s.variant)])
    return Results(
        samples=samples,
        seed=seed,
        fill=fill,
        duration=time.monotonic() - started,
        load_before=load_before,
        load_after=os.getloadavg(),
    )


# --------------------------------------------------------------------------------------------
# BENCHMARKS.md


def section_text(
    results: Results, options: Options, pg_version: str, command: str, revision: str
) -> str:
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    load = "load average {:.2f} / {:.2f} / {:.2f} before, {:.2f} / {:.2f} / {:.2f} after".format(
        *results.load_before, *results.load_after
    )
    total = len(results.samples)
    met = sum(judge(s, options.first_lock_timeout).all_met for s in results.samples)
    by_variant: dict[str, list[int]] = {}
    for sample in results.samples:
        counts = by_variant.setdefault(sample.variant, [0, 0])
        counts[0] += judge(sample, options.first_lock_timeout).all_met
        counts[1] += 1
    lines = [
        f"## {SECTION_TITLE}",
        "",
        f"`{SCRIPT}` applies one migration to a table of {options.rows:,} rows "
        f"(`{TABLE}`: `name`, `qty` integer, nullable `note`, `code`) while "
        f"{options.threads} threads, each on its own connection in autocommit (client-side "
        "binding, no prepared statements: as Django's backend connects by default), send "
        f"{options.rate:g} queries per second in total, paced open loop, in turn: a "
        "primary-key `SELECT` of the columns the old code knows, a primary-key `UPDATE "
        "… SET qty = qty + 1`, and an `INSERT` that names only the columns the table had "
        "before the migration (the old code's). Each sample runs on a fresh copy of one "
        "template database (`CREATE DATABASE … TEMPLATE`); the migration is applied by "
        "`manage.py` in a child process. Scenarios (the migration applied):",
        "",
        '- AddIndex: `AddIndex(Index(fields=["qty"]))`; AddIndexConcurrently: the same with '
        "`django.contrib.postgres`' `AddIndexConcurrently` (`atomic = False`);",
        '- AddFieldNotNull: `AddField("flag", IntegerField(default=0))`;',
        '- AlterFieldBigint: `AlterField("qty", BigIntegerField())`;',
        "- CheckConstraint: `AddConstraint(CheckConstraint(condition=Q(qty__gte=0)))`;",
        f'- ForeignKey: `AddField("category", ForeignKey(Category, null=True))`, to a table '
        f"of {CATEGORIES} rows;",
        '- UniqueConstraint: `AddConstraint(UniqueConstraint(fields=["code"]))`;',
        '- AlterFieldNotNull: `AlterField("note", CharField(max_length=100))`, from '
        "`null=True` (every row has a value).",
        "",
        f"Each runs without and with a reader: a transaction that reads one row (`BEGIN; "
        f"SELECT * FROM {TABLE} LIMIT 1`, ACCESS SHARE) {START_DELAY:g} s before the "
        f"migration starts and rolls back {options.hold:g} s after it opened. Variants, run "
        "back to back in a shuffled order for each scenario and reader mode:",
        "",
        "- Django's `migrate`: `manage.py migrate` with a settings module that does not "
        "install django_safemigrate (Django's own command, no lock timeout);",
        "- `safemigrate`: `manage.py safemigrate` with django_safemigrate installed and no "
        "`SAFEMIGRATE` setting (every default: online execution, lock retries from 0.1 s);",
        "- `safemigrate`, ZDM backend: the same with "
        "`django_zero_downtime_migrations.backends.postgres` as `ENGINE` (django-pg-zero-"
        f"downtime-migrations {importlib.metadata.version('django-pg-zero-downtime-migrations')},"
        " its settings at their defaults).",
        "",
        f"Baseline: queries due in the {options.seconds_before:g} s before the migration "
        f"(after {WARMUP:g} s of warm-up: a fresh copy's first queries can stall while its "
        "caches fill). p99 during: queries due while the migration's process ran, "
        "latency counted from when each was due (a query stuck behind a blocked one counts "
        "its wait). Max wait: the longest single query from sending it, while the migration "
        "ran. Failed: queries due from the migration's start to "
        f"{options.seconds_after:g} s after its end, by error. Migration: the child process's "
        "wall-clock (start-up included).",
        "",
        f"Targets: without the reader, p99 during at most {P99_FACTOR:g} times the baseline p99 or "
        f"the baseline p99 + {P99_SLACK * 1000:.0f} ms (the larger), no failed query, max "
        f"wait at most {MAX_WAIT * 1000:.0f} ms; with the reader, no failed query, max wait "
        f"at most the first lock timeout of a retry schedule "
        f"({options.first_lock_timeout * 1000:.0f} ms) + {READER_SLACK * 1000:.0f} ms, and "
        "the deploy completes (exit 0, the migration recorded and its effect in the "
        "catalogs); without the reader too, the deploy must complete.",
        "",
        "This run:",
        "",
        f"- Date: {now}; the whole run took {results.duration / 60:.1f} min (filling the "
        f"template's table: {results.fill:.0f} s)",
        f"- Machine: {cpu_model()}, {os.cpu_count()} cores, {platform.system()} "
        f"{platform.release()}; shared with other work, {load}",
        f"- Python {platform.python_version()}, Django {importlib.metadata.version('Django')}, "
        f"psycopg {importlib.metadata.version('psycopg')}, PostgreSQL {pg_version}",
        f"- Code: {revision}",
        f"- One sample per row, seed {results.seed}",
        "",
        *results_table(results.samples, options),
        "",
        f"Rows meeting every target: {met} of {total}. By variant: "
        + "; ".join(
            f"{v.label} {by_variant[v.name][0]} of {by_variant[v.name][1]}"
            for v in VARIANTS
            if v.name in by_variant
        )
        + ".",
        "",
        *failed_deploys(results.samples),
        *reproduce_lines(command),
        "",
    ]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------


def names(value: str, known: Sequence[str], what: str) -> list[str]:
    chosen = [v.strip() for v in value.split(",") if v.strip()]
    unknown = [v for v in chosen if v not in known]
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(
            f"unknown {what} {', '.join(unknown) or '(none given)'}; choose from {', '.join(known)}"
        )
    return chosen


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=f"python {SCRIPT}",
        description="Apply risky migrations to a big table under paced live traffic, with "
        "Django's migrate, safemigrate and safemigrate on the ZDM backend, and judge the "
        "traffic's latency and failures against the zero-downtime targets.",
    )
    parser.add_argument("--rows", type=int, default=2_000_000, help="rows (default: 2000000)")
    parser.add_argument(
        "--threads", type=int, default=8, help="load threads, one connection each (default: 8)"
    )
    parser.add_argument(
        "--rate", type=float, default=800, help="queries per second in total (default: 800)"
    )
    parser.add_argument(
        "--scenarios",
        type=lambda v: names(v, SCENARIO_NAMES, "scenario"),
        default=list(SCENARIO_NAMES),
        help=f"comma-separated (default: all: {','.join(SCENARIO_NAMES)})",
    )
    parser.add_argument(
        "--variants",
        type=lambda v: names(v, VARIANT_NAMES, "variant"),
        default=list(VARIANT_NAMES),
        help=f"comma-separated (default: all: {','.join(VARIANT_NAMES)})",
    )
    parser.add_argument(
        "--reader",
        choices=("both", "with", "without"),
        default="both",
        help="run each scenario with the long reader, without, or both (default)",
    )
    parser.add_argument(
        "--hold", type=float, default=5.0, help="seconds the reader stays open (default: 5)"
    )
    parser.add_argument(
        "--seconds-before", type=float, default=3.0, help="baseline seconds (default: 3)"
    )
    parser.add_argument(
        "--seconds-after",
        type=float,
        default=2.0,
        help="seconds of traffic after the migration, to see failures (default: 2)",
    )
    parser.add_argument(
        "--first-lock-timeout",
        type=float,
        default=0.1,
        help="the first lock timeout the reader target is judged by (default: 0.1 s)",
    )
    parser.add_argument("--seed", type=int, default=None, help="seed (default: random)")
    parser.add_argument(
        "--write",
        action="store_true",
        help=f"rewrite the '{SECTION_TITLE}' section of {BENCHMARKS_MD.name}",
    )
    args = parser.parse_args(argv)
    if (
        args.rows < 100
        or args.threads < 1
        or args.rate <= 0
        or args.hold <= START_DELAY
        or args.seconds_before <= 0
        or args.seconds_after < 0
        or args.first_lock_timeout < 0
    ):
        parser.error(
            f"--rows must be at least 100, --threads at least 1, --rate positive, --hold more "
            f"than {START_DELAY}, --seconds-before positive, --seconds-after and "
            "--first-lock-timeout not negative"
        )
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(list(sys.argv[1:] if argv is None else argv))
    given_url = os.environ.get("DATABASE_URL")
    maintenance_url = server_url(SCRIPT)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1_000_000)
    scenarios = [s for s in SCENARIOS if s.name in args.scenarios]
    variants = [v for v in VARIANTS if v.name in args.variants]
    readers = {"both": [False, True], "with": [True], "without": [False]}[args.reader]
    options = Options(
        rows=args.rows,
        threads=args.threads,
        rate=args.rate,
        hold=args.hold,
        seconds_before=args.seconds_before,
        seconds_after=args.seconds_after,
        first_lock_timeout=args.first_lock_timeout,
    )
    pg_version = server_version(maintenance_url)
    revision = git_revision()
    print(
        f"PostgreSQL {pg_version} at {redacted(maintenance_url)}; {args.rows:,} rows, "
        f"{args.threads} threads at {args.rate:g} queries/s; "
        f"{len(scenarios) * len(readers) * len(variants)} samples, seed {seed}",
        file=sys.stderr,
    )
    try:
        results = run_benchmark(
            maintenance_url,
            scenarios=scenarios,
            variants=variants,
            readers=readers,
            options=options,
            seed=seed,
        )
    except BenchmarkError as exc:
        print(f"\n{SCRIPT} stopped: {exc}", file=sys.stderr)
        return 1
    print()
    print(*results_table(results.samples, options), sep="\n")
    met = sum(judge(s, options.first_lock_timeout).all_met for s in results.samples)
    print(f"\nRows meeting every target: {met} of {len(results.samples)}.\n")
    print(*failed_deploys(results.samples), sep="\n")
    print(f"The run took {results.duration:.0f} s.")
    if args.write:
        words = [
            "--rows", str(args.rows), "--threads", str(args.threads), "--rate", f"{args.rate:g}",
            "--scenarios", ",".join(args.scenarios), "--variants", ",".join(args.variants),
            "--reader", args.reader, "--hold", f"{args.hold:g}",
            "--seconds-before", f"{args.seconds_before:g}",
            "--seconds-after", f"{args.seconds_after:g}",
            "--first-lock-timeout", f"{args.first_lock_timeout:g}",
            "--seed", str(seed), "--write",
        ]  # fmt: skip
        command = reproduce_command(SCRIPT, words, given_url)
        update_benchmarks(
            BENCHMARKS_MD,
            SECTION_TITLE,
            section_text(results, options, pg_version, command, revision),
        )
        print(f"Rewrote the '{SECTION_TITLE}' section of {BENCHMARKS_MD}.", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
