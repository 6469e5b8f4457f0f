"""squawk adding-foreign-key-constraint/add_column_references_lock: no scan, no long lock.

``ALTER TABLE emails ADD COLUMN user_id INT REFERENCES "user" (id)`` adds a column that is
NULL in every row, and PostgreSQL does not validate a foreign key on a column it has just
added: no row can violate it. On a 2,000,000-row table the statement reads no row
(``pg_stat_user_tables.seq_scan`` unchanged) and takes milliseconds, as long as adding a
plain nullable column: its locks are brief, not a time that grows with the table.
"""

from __future__ import annotations

import sys
import time

from _pg import connect, scratch, verdict

ROWS = 2_000_000


def seq_scans(conn, table: str) -> int:  # type: ignore[no-untyped-def]
    conn.execute("SELECT pg_stat_clear_snapshot()")
    row = conn.execute(
        "SELECT seq_scan FROM pg_stat_user_tables WHERE relname = %s", [table]
    ).fetchone()
    return int(row[0])


def main() -> int:
    with scratch("verify/add_column_references.py") as url, connect(url) as conn:
        conn.execute('CREATE TABLE "user" (id integer PRIMARY KEY)')
        conn.execute('INSERT INTO "user" SELECT generate_series(1, 10)')
        conn.execute("CREATE TABLE emails (id integer)")
        conn.execute("INSERT INTO emails SELECT generate_series(1, %s)", [ROWS])
        conn.execute("ANALYZE")
        time.sleep(1)
        before = seq_scans(conn, "emails")
        started = time.perf_counter()
        conn.execute('ALTER TABLE "emails" ADD COLUMN "user_id" INT REFERENCES "user" ("id")')
        with_fk = time.perf_counter() - started
        started = time.perf_counter()
        conn.execute('ALTER TABLE "emails" ADD COLUMN "plain" INT')
        plain = time.perf_counter() - started
        time.sleep(1)  # statistics reach the cumulative view with a delay
        after = seq_scans(conn, "emails")
        print(
            f"{ROWS:,} rows: ADD COLUMN … REFERENCES {with_fk * 1000:.1f} ms, plain ADD COLUMN "
            f"{plain * 1000:.1f} ms; sequential scans of emails {before} -> {after}"
        )
        return verdict(
            after == before and with_fk < 0.5,
            "adding a column with a foreign key reads no row of the table",
        )


if __name__ == "__main__":
    sys.exit(main())
