"""squawk ban-concurrent-index-creation-in-transaction/assuming_in_transaction_ok: it fails.

With ``assume_in_transaction`` the file runs inside a transaction, as a Django migration
with ``atomic = True`` does. squawk accepts a file whose only statement is
``CREATE UNIQUE INDEX CONCURRENTLY``; PostgreSQL refuses that statement in a transaction
block, so the migration fails.
"""

from __future__ import annotations

import sys

import psycopg
from _pg import ROWS, connect, scratch, verdict


def main() -> int:
    with scratch("verify/concurrently_in_transaction.py") as url, connect(url) as conn:
        conn.execute('CREATE TABLE "table_name" ("field_name" integer)')
        conn.execute('INSERT INTO "table_name" SELECT generate_series(1, %s)', [ROWS])
        try:
            with conn.transaction():
                conn.execute(
                    'CREATE UNIQUE INDEX CONCURRENTLY "field_name_idx" '
                    'ON "table_name" ("field_name")'
                )
        except psycopg.errors.ActiveSqlTransaction as exc:
            print(f"in a transaction: {exc.diag.message_primary}")
            return verdict(True, "CREATE INDEX CONCURRENTLY fails inside a transaction")
        return verdict(False, "CREATE INDEX CONCURRENTLY fails inside a transaction")


if __name__ == "__main__":
    sys.exit(main())
