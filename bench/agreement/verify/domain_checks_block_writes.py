"""squawk ban-alter-domain-with-add-constraint/ok: SET NOT NULL and VALIDATE check every row.

It is a lock hazard.

The fixture's ``ALTER DOMAIN … SET NOT NULL`` and ``ALTER DOMAIN … VALIDATE CONSTRAINT``
check every stored value of the domain, as ``ADD CONSTRAINT`` (which squawk flags) does:
each fails when one row of a table using the domain violates it, so each reads the
table. On a 20,000-row table with a column of the domain, the check reads pg_locks while
each statement's transaction is open (SHARE on the table, held for the whole check), and
a concurrent INSERT into the table waits until the transaction ends.
"""

from __future__ import annotations

import sys
import threading
import time

import psycopg
from _pg import ROWS, connect, scratch, verdict

ADD_NOT_VALID = "ALTER DOMAIN amount ADD CONSTRAINT amount_positive CHECK (VALUE > 0) NOT VALID"
#: Each statement, and how to store one row it rejects (rolled back afterwards).
STATEMENTS = {
    "ALTER DOMAIN amount SET NOT NULL": ["INSERT INTO payment VALUES (NULL)"],
    "ALTER DOMAIN amount VALIDATE CONSTRAINT amount_positive": [
        "ALTER DOMAIN amount DROP CONSTRAINT amount_positive",
        "INSERT INTO payment VALUES (-1)",
        ADD_NOT_VALID,
    ],
}


def main() -> int:
    holds = True
    with scratch("verify/domain_checks_block_writes.py") as url, connect(url) as conn:
        conn.execute("CREATE DOMAIN amount AS integer")
        conn.execute("CREATE TABLE payment (total amount)")
        conn.execute("INSERT INTO payment SELECT generate_series(1, %s)", [ROWS])
        conn.execute(ADD_NOT_VALID)
        for statement, violation in STATEMENTS.items():
            checked = _fails_on_a_violating_row(url, statement, violation)
            locks, waited, hold = _locks_and_writer_wait(url, conn, statement)
            print(
                f"{statement}: fails with one violating row: {checked}; locks while open: "
                f"{locks}; a concurrent INSERT waited {waited:.2f} s (transaction held {hold} s)"
            )
            holds = holds and checked and locks == [("payment", "ShareLock")]
            holds = holds and waited >= hold * 0.9
    return verdict(
        holds,
        "ALTER DOMAIN SET NOT NULL and VALIDATE CONSTRAINT check every row of the tables using "
        "the domain under a SHARE lock, which blocks writes until the transaction ends",
    )


def _fails_on_a_violating_row(url: str, statement: str, violation: list[str]) -> bool:
    with connect(url) as conn:
        conn.execute("BEGIN")
        for step in violation:
            conn.execute(step)
        try:
            conn.execute(statement)
        except psycopg.errors.Error as exc:
            print(f"  after {'; '.join(violation)}: {exc.diag.message_primary}")
            return True
        finally:
            conn.execute("ROLLBACK")
    return False


def _locks_and_writer_wait(
    url: str, conn: psycopg.Connection, statement: str
) -> tuple[list[tuple[str, str]], float, float]:
    hold = 1.0
    waited: list[float] = []

    def writer() -> None:
        with connect(url) as other:
            started = time.perf_counter()
            other.execute("INSERT INTO payment VALUES (1)")
            waited.append(time.perf_counter() - started)

    with connect(url) as migration:
        migration.execute("BEGIN")
        migration.execute(statement)
        locks = conn.execute(
            "SELECT c.relname, l.mode FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
            "WHERE l.pid = %s AND l.granted AND c.relname = 'payment'",
            [migration.info.backend_pid],
        ).fetchall()
        thread = threading.Thread(target=writer)
        thread.start()
        time.sleep(hold)
        migration.execute("ROLLBACK")
        thread.join()
    return locks, waited[0], hold


if __name__ == "__main__":
    sys.exit(main())
