"""What does a short ``lock_timeout`` buy the queries of a busy table while a migration waits?

Each sample runs on a fresh copy of one template database: a table ``ltbench_item`` of 1,000
rows, every app migrated, one migration left to apply: ``AddField("item", "sku",
CharField(null=True))``, an ``ALTER TABLE … ADD COLUMN`` that needs an ACCESS EXCLUSIVE lock for
a moment. Then, in order:

1. a reader connection starts reading one row (``SELECT name FROM ltbench_item WHERE id = 1``),
   one read due every 20 ms;
2. a blocker connection opens a transaction and reads the table (``BEGIN; SELECT * FROM
   ltbench_item LIMIT 1``): it holds ACCESS SHARE until it rolls back ``--hold`` seconds later
   (default 5), as a long report query or a forgotten transaction would;
3. 0.2 s later the migration starts, applied by one of:

``safemigrate``
    ``manage.py safemigrate`` with ``SAFEMIGRATE = {"LOCK_TIMEOUT": 0.5, "RETRIES": 50,
    "RETRY_BACKOFF": 0.2, "RETRY_BACKOFF_MAX": 1}``: the ALTER waits at most 0.5 s in the lock
    queue, gives up, rolls back, and tries again after a backoff.
``django``
    Django's core ``migrate`` command (``django.core.management.commands.migrate.Command``
    through ``call_command``), no ``lock_timeout``: the ALTER waits in the queue until the
    blocker ends.

While the ALTER waits for its ACCESS EXCLUSIVE lock, every later lock request on the table,
the reader's ACCESS SHARE included, queues behind it (PostgreSQL grants locks in queue order:
https://www.postgresql.org/docs/current/explicit-locking.html). The reader keeps its schedule
(a read every 20 ms, open loop): a read that was due while the reader was stuck is sent as soon
as it can be, and its latency is counted both from when it was sent ("as issued", what one
client saw) and from when it was due ("as due", what a stream of independent requests would have
seen). Only reads due while the migration command ran count.

The migration time is the wall-clock of the command's process (start-up included). Retries are
safemigrate's "lock timeout on attempt N of M" lines on stderr. Rounds run both variants once in
a shuffled order; the table shows per-variant medians over the rounds.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres python bench/lock_timeout.py
    python bench/lock_timeout.py --write   # also rewrite BENCHMARKS.md's section
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import importlib.metadata
import json
import os
import platform
import random
import re
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
SECTION_TITLE = "Lock timeout"
APP = "ltbench"
TABLE = f"{APP}_item"
ROWS = 1000
START_DELAY = 0.2  # seconds between the blocker's read and the migration's start
CHILD_TIMEOUT = 120.0
SLOW = 1.0  # a read slower than this counts as stalled
SAFEMIGRATE_SETTINGS = {
    "LOCK_TIMEOUT": 0.5,
    "RETRIES": 50,
    "RETRY_BACKOFF": 0.2,
    "RETRY_BACKOFF_MAX": 1,
}
RETRY_LINE = re.compile(r"lock timeout on attempt \d+ of \d+")


@dataclasses.dataclass(frozen=True)
class Variant:
    name: str
    label: str
    command: tuple[str, ...]  # arguments to the Python interpreter


DJANGO_MIGRATE = (
    "import django,sys; django.setup(); from django.core.management import call_command; "
    "from django.core.management.commands.migrate import Command; call_command(Command())"
)
VARIANTS = (
    Variant(
        "safemigrate",
        "`safemigrate`, `LOCK_TIMEOUT` 0.5 s",
        (str(REPO_ROOT / "manage.py"), "safemigrate", "--noinput"),
    ),
    Variant("django", "Django's `migrate`, no `lock_timeout`", ("-c", DJANGO_MIGRATE)),
)


class BenchmarkError(RuntimeError):
    """A sample failed or left a result that cannot be trusted; the benchmark stops."""


# --------------------------------------------------------------------------------------------
# The scenario app, written into a temporary directory

MODELS = f"""\
from django.db import models


class Item(models.Model):
    name = models.CharField(max_length=100)
    sku = models.CharField(max_length=20, null=True)

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
            name="Item",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("name", models.CharField(max_length=100)),
            ],
        ),
    ]
"""

ADD_FIELD = f"""\
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("{APP}", "0001_initial")]
    operations = [
        migrations.AddField("item", "sku", models.CharField(max_length=20, null=True)),
    ]
"""


def write_app(root: Path) -> None:
    package = root / APP
    migrations = package / "migrations"
    migrations.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "models.py").write_text(MODELS)
    (migrations / "__init__.py").write_text("")
    (migrations / "0001_initial.py").write_text(INITIAL)
    (migrations / "0002_item_sku.py").write_text(ADD_FIELD)


def child_env(database_url: str, root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SAFEMIGRATE_", "SCENARIO_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="tests.scenario_settings",
        DATABASE_URL=database_url,
        SCENARIO_APPS=APP,
        SCENARIO_BASE_DIR=str(root),
        SAFEMIGRATE_JSON=json.dumps(SAFEMIGRATE_SETTINGS),
        PYTHONPATH=os.pathsep.join([str(root), str(REPO_ROOT)]),
        PYTHONUNBUFFERED="1",
    )
    return env


def start_child(args: Sequence[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, *args],
        cwd=REPO_ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish_child(process: subprocess.Popen[str], label: str) -> tuple[str, str]:
    """Wait for the child; return its stdout and stderr, or stop the benchmark."""
    try:
        out, err = process.communicate(timeout=CHILD_TIMEOUT)
    except subprocess.TimeoutExpired as exc:
        process.kill()
        process.communicate()
        raise BenchmarkError(f"{label}: no result within {CHILD_TIMEOUT:.0f}s.") from exc
    if process.returncode != 0:
        raise BenchmarkError(
            f"{label}: exited {process.returncode}.\n--- stdout ---\n{tail(out)}\n"
            f"--- stderr ---\n{tail(err)}"
        )
    return out, err


# --------------------------------------------------------------------------------------------
# The template database


def make_template(maintenance_url: str, name: str, root: Path) -> None:
    """Every app migrated, ltbench up to 0001, ``ROWS`` rows: only the AddField left."""
    create_database(maintenance_url, name)
    url = with_database(maintenance_url, name)
    process = start_child(
        [str(REPO_ROOT / "manage.py"), "safemigrate", APP, "0001", "--noinput"],
        child_env(url, root),
    )
    finish_child(process, "template: migrate")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("INSERT INTO {} (name) SELECT 'item ' || i FROM generate_series(1, %s) i")
            .format(sql.Identifier(TABLE)),
            [ROWS],
        )  # fmt: skip
        conn.execute(sql.SQL("VACUUM (ANALYZE) {}").format(sql.Identifier(TABLE)))
    admin(maintenance_url, sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS false").format(
        sql.Identifier(name)
    ))  # fmt: skip


# --------------------------------------------------------------------------------------------
# The traffic


@dataclasses.dataclass(frozen=True)
class Read:
    due: float  # time.time() when the read was due
    issued: float  # seconds from sending it to its answer
    from_due: float  # seconds from when it was due to its answer


class Reader(threading.Thread):
    """One read of one row due every ``interval`` seconds (open loop), each timed."""

    def __init__(self, url: str, interval: float) -> None:
        super().__init__(daemon=True)
        self.url, self.interval = url, interval
        self.reads: list[Read] = []
        self.ready, self.stop = threading.Event(), threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        query = sql.SQL("SELECT name FROM {} WHERE id = 1").format(sql.Identifier(TABLE))
        try:
            with psycopg.connect(
                self.url, autocommit=True, application_name="bench reader"
            ) as conn:
                self.ready.set()
                # Due times on both clocks: perf_counter for latencies, time.time to match
                # the command's start and end.
                base_perf, base_wall = time.perf_counter(), time.time()
                due = 0.0
                while not self.stop.is_set():
                    wait = base_perf + due - time.perf_counter()
                    if wait > 0:
                        self.stop.wait(wait)
                    sent = time.perf_counter()
                    conn.execute(query).fetchone()
                    done = time.perf_counter()
                    self.reads.append(Read(base_wall + due, done - sent, done - base_perf - due))
                    due += self.interval
        except BaseException as exc:  # reported by the main thread
            self.error = exc
            self.ready.set()


# --------------------------------------------------------------------------------------------
# One sample


@dataclasses.dataclass(frozen=True)
class Sample:
    round: int
    variant: str
    migration: float  # wall-clock of the command's process
    retries: int
    reads: int  # reads due while the command ran
    max_issued: float
    p99_issued: float
    slow_issued: int  # reads that themselves waited longer than SLOW
    max_due: float
    p99_due: float
    slow_due: int  # reads answered more than SLOW after they were due


def run_sample(
    maintenance_url: str,
    template: str,
    variant: Variant,
    *,
    round_no: int,
    root: Path,
    hold: float,
    interval: float,
) -> Sample:
    name = f"sm_ltbench_{os.getpid()}_{round_no}_{secrets.token_hex(3)}"
    label = f"round {round_no + 1} {variant.name} (database {name})"
    url = with_database(maintenance_url, name)
    copy_database(maintenance_url, template, name)
    try:
        reader = Reader(url, interval)
        reader.start()
        reader.ready.wait(30)
        time.sleep(0.5)  # a few undisturbed reads first
        blocker = psycopg.connect(url, application_name="bench blocker")
        release = threading.Timer(hold, blocker.rollback)
        try:
            # psycopg opens the transaction implicitly: BEGIN; SELECT … LIMIT 1, kept open.
            blocker.execute(sql.SQL("SELECT * FROM {} LIMIT 1").format(sql.Identifier(TABLE)))
            release.start()
            time.sleep(START_DELAY)
            started_wall, started = time.time(), time.perf_counter()
            process = start_child(variant.command, child_env(url, root))
            try:
                _out, err = finish_child(process, label)
            finally:
                migration = time.perf_counter() - started
                ended_wall = time.time()
                release.join()
        finally:
            release.cancel()
            blocker.close()
            reader.stop.set()
            reader.join()
        if reader.error is not None:
            raise BenchmarkError(f"{label}: the reader failed: {reader.error}")
        check_result(url, label)
        reads = [r for r in reader.reads if started_wall <= r.due <= ended_wall]
        issued = [r.issued for r in reads]
        from_due = [r.from_due for r in reads]
        return Sample(
            round=round_no,
            variant=variant.name,
            migration=migration,
            retries=len(RETRY_LINE.findall(err)),
            reads=len(reads),
            max_issued=max(issued, default=0.0),
            p99_issued=percentile(issued, 0.99),
            slow_issued=sum(x > SLOW for x in issued),
            max_due=max(from_due, default=0.0),
            p99_due=percentile(from_due, 0.99),
            slow_due=sum(x > SLOW for x in from_due),
        )
    finally:
        drop_database(maintenance_url, name)


def check_result(url: str, label: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        applied = conn.execute(
            "SELECT count(*) FROM django_migrations WHERE app = %s AND name = '0002_item_sku'",
            [APP],
        ).fetchone()
        column = conn.execute(
            "SELECT count(*) FROM information_schema.columns "
            "WHERE table_name = %s AND column_name = 'sku'",
            [TABLE],
        ).fetchone()
    if not applied or applied[0] != 1 or not column or column[0] != 1:
        raise BenchmarkError(
            f"{label}: the command exited 0 but the AddField is not applied and recorded "
            "exactly once; the timing would mean nothing."
        )


# --------------------------------------------------------------------------------------------
# Results


@dataclasses.dataclass(frozen=True)
class Results:
    samples: list[Sample]
    rounds: int
    seed: int
    hold: float
    interval: float
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
    if value >= 1:
        return f"{value:.2f} s"
    return f"{value * 1000:.0f} ms"


MEDIAN_FIELDS = (
    "migration", "retries", "reads", "max_issued", "p99_issued", "slow_issued", "max_due",
    "p99_due", "slow_due",
)  # fmt: skip


def results_table(results: Results) -> list[str]:
    lines = [
        "| variant | migration time | retries | reads | max read | p99 read | reads > 1 s "
        "| max, as due | p99, as due | reads > 1 s, as due |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for variant in VARIANTS:
        m = {field: results.median(variant.name, field) for field in MEDIAN_FIELDS}
        low, high = results.spread(variant.name, "max_issued")
        lines.append(
            f"| {variant.label} | {seconds(m['migration'])} | {m['retries']:.0f} "
            f"| {m['reads']:.0f} | {seconds(m['max_issued'])} ({seconds(low)} to "
            f"{seconds(high)}) | {seconds(m['p99_issued'])} | {m['slow_issued']:.0f} "
            f"| {seconds(m['max_due'])} | {seconds(m['p99_due'])} | {m['slow_due']:.0f} |"
        )
    return lines


def print_sample(sample: Sample) -> None:
    print(
        f"round {sample.round + 1} {sample.variant:<12} migration {sample.migration:6.2f} s  "
        f"retries {sample.retries:2d}  reads {sample.reads:4d}  "
        f"issued: max {sample.max_issued * 1000:7.1f} ms p99 {sample.p99_issued * 1000:7.1f} ms "
        f">1s {sample.slow_issued:3d}  due: max {sample.max_due * 1000:7.1f} ms "
        f"p99 {sample.p99_due * 1000:7.1f} ms >1s {sample.slow_due:3d}",
        file=sys.stderr,
        flush=True,
    )


def run_benchmark(
    maintenance_url: str, *, rounds: int, seed: int, hold: float, interval: float
) -> Results:
    rng = random.Random(seed)
    load_before = os.getloadavg()
    started = time.monotonic()
    template = f"sm_ltbench_tpl_{os.getpid()}_{secrets.token_hex(3)}"
    samples: list[Sample] = []
    with tempfile.TemporaryDirectory(prefix="sm_ltbench_") as tmp:
        root = Path(tmp)
        write_app(root)
        try:
            make_template(maintenance_url, template, root)
            for round_no in range(rounds):
                order = list(VARIANTS)
                rng.shuffle(order)
                for variant in order:
                    sample = run_sample(
                        maintenance_url,
                        template,
                        variant,
                        round_no=round_no,
                        root=root,
                        hold=hold,
                        interval=interval,
                    )
                    print_sample(sample)
                    samples.append(sample)
        finally:
            drop_database(maintenance_url, template)
    return Results(
        samples=samples,
        rounds=rounds,
        seed=seed,
        hold=hold,
        interval=interval,
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
    settings = ", ".join(f'"{k}": {v}' for k, v in SAFEMIGRATE_SETTINGS.items())
    interval = f"{results.interval * 1000:.0f} ms"
    safe, django = (
        {f: results.median(v.name, f) for f in MEDIAN_FIELDS} for v in VARIANTS
    )  # VARIANTS is (safemigrate, django)
    lines = [
        f"## {SECTION_TITLE}",
        "",
        "`bench/lock_timeout.py` applies one `AddField` (`ALTER TABLE … ADD COLUMN`, which "
        f"needs ACCESS EXCLUSIVE for a moment) to a busy table of {ROWS:,} rows while a "
        f"long transaction holds ACCESS SHARE on it (`BEGIN; SELECT * FROM t LIMIT 1;`, rolled "
        f"back after {results.hold:g} s; the migration starts {START_DELAY:g} s after it). "
        f"A reader reads one row (`WHERE id = 1`), one read due every {interval}. Variants:",
        "",
        f"- `safemigrate` with `SAFEMIGRATE = {{{settings}}}`;",
        "- Django's core `migrate` (`call_command(django.core.management.commands.migrate."
        "Command())`), no `lock_timeout`.",
        "",
        "While the ALTER waits in the lock queue, every later lock request on the table, the "
        "reader's included, queues behind it. The reader keeps its schedule: a read that fell "
        "due while it was stuck is sent as soon as it can be. Read latency is counted from "
        "sending (max read, p99 read, reads > 1 s: what one client saw) and from when the read "
        'was due ("as due": what a steady stream of independent requests would have seen). '
        "Only reads due while the migration command ran count. Migration time: wall-clock of "
        "the command's process (start-up included). Retries: safemigrate's \"lock timeout on "
        'attempt N of M" lines. Each sample runs on a fresh copy of one template database; '
        "each round runs both variants in a shuffled order.",
        "",
        "This run:",
        "",
        f"- Date: {now}; the whole run took {results.duration:.0f} s",
        f"- Machine: {cpu_model()}, {os.cpu_count()} cores, {platform.system()} "
        f"{platform.release()}; shared with other work, {load}",
        f"- Python {platform.python_version()}, Django {importlib.metadata.version('Django')}, "
        f"psycopg {importlib.metadata.version('psycopg')}, PostgreSQL {pg_version}",
        f"- Code: {revision}",
        f"- Rounds: {results.rounds}, seed {results.seed}; medians over the rounds (each column "
        "on its own), max read also with min to max",
        "",
        *results_table(results),
        "",
        f"In short: with the short `lock_timeout` the longest read took "
        f"{seconds(safe['max_issued'])} and {safe['slow_due']:.0f} reads were answered more "
        f"than 1 s after they were due; without it, {seconds(django['max_issued'])} and "
        f"{django['slow_due']:.0f}. The price: {safe['retries']:.0f} retries; the migration took "
        f"{seconds(safe['migration'])} (Django's: {seconds(django['migration'])}), and neither "
        f"can finish before the blocker ends, {results.hold - START_DELAY:g} s after it starts.",
        "",
        *reproduce_lines(command),
        "",
    ]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python bench/lock_timeout.py",
        description="Compare read latency on a busy table while an AddField waits behind a "
        "long transaction: safemigrate with a 0.5 s lock_timeout and retries, against "
        "Django's own migrate.",
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="rounds of both variants (default: 3; medians)"
    )
    parser.add_argument(
        "--hold",
        type=float,
        default=5.0,
        help="seconds the blocking transaction stays open (default: 5)",
    )
    parser.add_argument(
        "--interval",
        type=float,
        default=0.02,
        help="seconds between two reads' due times (default: 0.02)",
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
    if args.rounds < 1 or args.hold <= START_DELAY or args.interval <= 0:
        parser.error(
            f"--rounds must be at least 1, --hold more than {START_DELAY}, --interval positive"
        )
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(list(sys.argv[1:] if argv is None else argv))
    given_url = os.environ.get("DATABASE_URL")
    maintenance_url = server_url("bench/lock_timeout.py")
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1_000_000)
    pg_version = server_version(maintenance_url)
    revision = git_revision()
    print(
        f"PostgreSQL {pg_version} at {redacted(maintenance_url)}; {args.rounds} rounds of "
        f"{', '.join(v.name for v in VARIANTS)}, hold {args.hold:g} s, seed {seed}",
        file=sys.stderr,
    )
    try:
        results = run_benchmark(
            maintenance_url,
            rounds=args.rounds,
            seed=seed,
            hold=args.hold,
            interval=args.interval,
        )
    except BenchmarkError as exc:
        print(f"\nbench/lock_timeout.py stopped: {exc}", file=sys.stderr)
        return 1
    print()
    print(*results_table(results), sep="\n")
    print(f"\nThe run took {results.duration:.0f} s.")
    if args.write:
        words = [
            "--rounds", str(args.rounds), "--hold", f"{args.hold:g}",
            "--interval", f"{args.interval:g}", "--seed", str(seed), "--write",
        ]  # fmt: skip
        command = reproduce_command("bench/lock_timeout.py", words, given_url)
        update_benchmarks(
            BENCHMARKS_MD, SECTION_TITLE, section_text(results, pg_version, command, revision)
        )
        print(f"Rewrote the '{SECTION_TITLE}' section of {BENCHMARKS_MD}.", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
