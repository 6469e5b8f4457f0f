"""squawk adding-foreign-key-constraint/add_foreign_key_constraint_not_valid_validate.

It is a lock hazard.

The fixture runs, in one transaction, ``ADD COLUMN``, ``ADD CONSTRAINT … NOT VALID`` and
``VALIDATE CONSTRAINT``. ``NOT VALID`` then ``VALIDATE`` avoids a long lock only when the
validation runs in a later transaction: here the ACCESS EXCLUSIVE lock the ``ADD COLUMN``
took (and the SHARE ROW EXCLUSIVE locks of the foreign key) are held until COMMIT, so the
validation's scan runs under them. On a 20,000-row table with every row referencing, the
check reads pg_locks while the transaction is open, and a concurrent old-code INSERT
waits until the transaction ends.
"""

from __future__ import annotations

import sys
import threading
import time

from _pg import ROWS, connect, scratch, verdict

FIXTURE = [
    'ALTER TABLE "email" ADD COLUMN "user_id" INT',
    'UPDATE "email" SET "user_id" = 1',  # so that VALIDATE has rows to check
    'ALTER TABLE "email" ADD CONSTRAINT "fk_user" FOREIGN KEY ("user_id") '
    'REFERENCES "user" ("id") NOT VALID',
    'ALTER TABLE "email" VALIDATE CONSTRAINT "fk_user"',
]


def main() -> int:
    with scratch("verify/validate_in_same_transaction.py") as url, connect(url) as conn:
        conn.execute('CREATE TABLE "user" (id integer PRIMARY KEY)')
        conn.execute('INSERT INTO "user" VALUES (1)')
        conn.execute('CREATE TABLE "email" (id integer)')
        conn.execute('INSERT INTO "email" SELECT generate_series(1, %s)', [ROWS])
        hold = 1.0
        waited: list[float] = []

        def old_code_insert() -> None:
            with connect(url) as other:
                started = time.perf_counter()
                other.execute('INSERT INTO "email" (id) VALUES (0)')
                waited.append(time.perf_counter() - started)

        with connect(url) as migration:
            migration.execute("BEGIN")
            for statement in FIXTURE:
                migration.execute(statement)
            pid = migration.info.backend_pid
            locks = conn.execute(
                "SELECT c.relname, l.mode FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                "WHERE l.pid = %s AND l.granted AND c.relname IN ('email', 'user') ORDER BY 1, 2",
                [pid],
            ).fetchall()
            print("locks held after VALIDATE, before COMMIT:", locks)
            writer = threading.Thread(target=old_code_insert)
            writer.start()
            time.sleep(hold)
            migration.execute("COMMIT")
            writer.join()
        print(
            f"a concurrent INSERT into email waited {waited[0]:.2f} s (transaction held {hold} s)"
        )
        held = ("email", "AccessExclusiveLock") in locks
        return verdict(
            held and waited[0] >= hold * 0.9,
            "VALIDATE in the same transaction runs under the ADD's locks, which block writes "
            "until COMMIT",
        )


if __name__ == "__main__":
    sys.exit(main())
