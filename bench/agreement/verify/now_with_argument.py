"""squawk adding-field-with-default/default_random_with_args_err: the statement fails.

Nothing is rewritten.

squawk flags ``ADD COLUMN "foo" timestamptz DEFAULT now(123)`` as a default that rewrites
the table. PostgreSQL has no ``now(integer)``: the statement fails before touching the
table, so there is no rewrite and no lock held for a time that grows with the table.
"""

from __future__ import annotations

import sys

import psycopg
from _pg import ROWS, connect, scratch, verdict


def main() -> int:
    with scratch("verify/now_with_argument.py") as url, connect(url) as conn:
        conn.execute('CREATE TABLE "core_recipe" (id integer)')
        conn.execute('INSERT INTO "core_recipe" SELECT generate_series(1, %s)', [ROWS])
        try:
            conn.execute('ALTER TABLE "core_recipe" ADD COLUMN "foo" timestamptz DEFAULT now(123)')
        except psycopg.errors.UndefinedFunction as exc:
            print(f"the fixture's statement: {exc.diag.message_primary}")
            return verdict(True, "the statement fails: now(123) does not exist")
        return verdict(False, "the statement fails: now(123) does not exist")


if __name__ == "__main__":
    sys.exit(main())
