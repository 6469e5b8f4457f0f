"""squawk adding-field-with-default/docs_example_error_on_pg_11: no rewrite since PostgreSQL 11.

squawk flags ``ADD COLUMN "foo" integer DEFAULT 10`` when judging for PostgreSQL 11.0 (its
check is ``pg_version > 11``). PostgreSQL 11 is the release that made adding a column with
a non-volatile default a catalog-only change (release notes of 11: "Allow ALTER TABLE to
add a column with a non-null default without doing a table rewrite"). Checked here on the
server at hand: on a 20,000-row table the table's ``relfilenode`` does not change (no
rewrite) and every existing row reads the default.
"""

from __future__ import annotations

import sys

from _pg import ROWS, connect, scratch, verdict


def main() -> int:
    with scratch("verify/fast_default.py") as url, connect(url) as conn:
        conn.execute('CREATE TABLE "core_recipe" (id integer)')
        conn.execute('INSERT INTO "core_recipe" SELECT generate_series(1, %s)', [ROWS])
        query = "SELECT relfilenode FROM pg_class WHERE relname = 'core_recipe'"
        before = conn.execute(query).fetchone()
        conn.execute('ALTER TABLE "core_recipe" ADD COLUMN "foo" integer DEFAULT 10')
        after = conn.execute(query).fetchone()
        filled = conn.execute('SELECT count(*) FROM "core_recipe" WHERE "foo" = 10').fetchone()
        print(f"relfilenode {before} -> {after}; rows reading the default: {filled}")
        return verdict(
            before == after and filled is not None and filled[0] == ROWS,
            "ADD COLUMN … DEFAULT 10 does not rewrite the table",
        )


if __name__ == "__main__":
    sys.exit(main())
