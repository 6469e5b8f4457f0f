"""How long does a production write wait while a column's type changes online?

Builds ``items`` with ``--rows`` rows (``id bigserial`` primary key, ``qty integer NOT NULL
DEFAULT 0 CHECK (qty >= 0)``, ``code varchar(20)``, ``note text``; a UNIQUE constraint on
``(qty, code)``, an index on ``qty`` and a partial index on ``code WHERE qty > 10``), then runs
the online form of ``ALTER COLUMN qty TYPE bigint`` (django_safemigrate.online.typechange)
step by step as the deploy runs it: transactional steps in one transaction each, the others
alone in autocommit, with the server's default timeouts. Meanwhile a writer connection
repeats a single-row ``UPDATE items SET qty = qty + 1 WHERE id = <random>`` (it fires the
online form's trigger) every 5 ms and times each one.

Prints, per step: its duration, the writes that overlapped it and the longest of them; then
the longest write over the whole sequence, and the plain ``ALTER`` on an identical table
for comparison (how long it holds ACCESS EXCLUSIVE, so how long every write waits).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python bench/online_typechange.py --rows 1000000
"""

from __future__ import annotations

import argparse
import random
import sys
import threading
import time
import uuid
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import server_url, with_database
from django_safemigrate.online.forms import OnlineForm
from django_safemigrate.online.typechange import column_facts, type_change_form
from django_safemigrate.sql import parse

SETUP = """
CREATE TABLE items (
    id bigserial PRIMARY KEY,
    qty integer NOT NULL DEFAULT 0 CHECK (qty >= 0),
    code varchar(20),
    note text,
    CONSTRAINT items_qty_code_key UNIQUE (qty, code)
);
INSERT INTO items (qty, code, note)
SELECT g % 5000, 'c' || g, 'note ' || g FROM generate_series(1, {rows}) AS g;
CREATE INDEX items_qty ON items (qty);
CREATE INDEX items_code_busy ON items (code) WHERE qty > 10;
"""
ALTER = 'ALTER TABLE "items" ALTER COLUMN "qty" TYPE bigint USING "qty"::bigint'


class Writer(threading.Thread):
    def __init__(self, url: str, rows: int) -> None:
        super().__init__(daemon=True)
        self.url, self.rows = url, rows
        self.stop = threading.Event()
        #: (start, duration) of every write.
        self.writes: list[tuple[float, float]] = []
        self.errors: list[str] = []

    def run(self) -> None:
        rnd = random.Random(1)
        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self.stop.is_set():
                started = time.monotonic()
                try:
                    conn.execute(
                        "UPDATE items SET qty = qty + 1 WHERE id = %s", [rnd.randint(1, self.rows)]
                    )
                except psycopg.Error as exc:
                    self.errors.append(repr(exc))
                self.writes.append((started, time.monotonic() - started))
                time.sleep(0.005)


def create(url: str, rows: int) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(SETUP.format(rows=rows))
        conn.execute("VACUUM ANALYZE items")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    server = server_url("bench/online_typechange.py")
    names = [f"bench_tc_{uuid.uuid4().hex[:8]}" for _ in range(2)]
    with psycopg.connect(server, autocommit=True) as conn:
        for name in names:
            conn.execute(f'CREATE DATABASE "{name}"')
    try:
        online, plain = (with_database(server, name) for name in names)
        for url in (online, plain):
            create(url, args.rows)
        run(online, plain, args.rows)
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            for name in names:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def run(online: str, plain: str, rows: int) -> None:
    (statement,) = parse(ALTER)
    with psycopg.connect(online) as conn, psycopg.ClientCursor(conn) as cursor:
        conn.execute("SET TRANSACTION READ ONLY")
        facts = column_facts(cursor, "items", "qty")
        version = int(conn.info.server_version) // 10000
    form = type_change_form(
        statement,
        table="items",
        column="qty",
        new_type="bigint",
        using=None,
        facts=facts,
        pg_version=version,
    )
    assert isinstance(form, OnlineForm), form
    print(f"{rows:,} rows, PostgreSQL {version}")
    print(f"{'step':<72} {'seconds':>8} {'writes':>7} {'longest write (ms)':>19}")
    writer = Writer(online, rows)
    writer.start()
    time.sleep(1)
    spans = []
    with psycopg.connect(online, autocommit=True) as conn:
        for step in form.steps:
            started = time.monotonic()
            if step.transactional:
                with conn.transaction():
                    for sql in step.statements:
                        conn.execute(sql)
            else:
                conn.execute(step.statements[0])
            spans.append((step.purpose, started, time.monotonic()))
    time.sleep(1)
    writer.stop.set()
    writer.join()
    assert not writer.errors, writer.errors[:3]
    for purpose, start, end in spans:
        overlapping = [d for s, d in writer.writes if s < end and s + d > start]
        longest = max(overlapping, default=0.0) * 1000
        print(f"{purpose[:72]:<72} {end - start:8.2f} {len(overlapping):7d} {longest:19.1f}")
    first, last = spans[0][1], spans[-1][2]
    during = [d for s, d in writer.writes if s < last and s + d > first]
    print(
        f"whole sequence: {last - first:.1f} s, {len(during)} writes, longest "
        f"{max(during) * 1000:.1f} ms, median {sorted(during)[len(during) // 2] * 1000:.2f} ms"
    )
    with psycopg.connect(plain, autocommit=True) as conn:
        started = time.monotonic()
        conn.execute(ALTER)
        print(
            f"plain ALTER: {time.monotonic() - started:.1f} s under ACCESS EXCLUSIVE "
            "(every read and write of the table waits that long)"
        )


if __name__ == "__main__":
    main()
