"""django-migration-linter app_unique_together.0003: dropping the unique constraint breaks old code.

The linter passes ``AlterUniqueTogether(unique_together=set())``. The old code may rely
on the constraint: ``bulk_create(..., update_conflicts=True, unique_fields=[...])`` and
``INSERT … ON CONFLICT (int_field, char_field)`` need a unique index on those columns. On a
20,000-row table, after the drop, the old code's ON CONFLICT INSERT fails.
"""

from __future__ import annotations

import sys

import psycopg
from _pg import ROWS, connect, scratch, verdict

OLD_CODE = (
    'INSERT INTO "app_unique_together_a" ("int_field", "char_field") VALUES (1, %s) '
    'ON CONFLICT ("int_field", "char_field") DO NOTHING'
)


def main() -> int:
    with scratch("verify/on_conflict_after_drop_unique.py") as url, connect(url) as conn:
        conn.execute(
            'CREATE TABLE "app_unique_together_a" ("id" serial PRIMARY KEY, '
            '"int_field" integer NOT NULL, "char_field" varchar(255) NOT NULL, '
            'CONSTRAINT "app_unique_together_a_int_field_char_field_uniq" '
            'UNIQUE ("int_field", "char_field"))'
        )
        conn.execute(
            'INSERT INTO "app_unique_together_a" ("int_field", "char_field") '
            "SELECT g, 'v' || g FROM generate_series(1, %s) g",
            [ROWS],
        )
        conn.execute(OLD_CODE, ["v1"])  # works with the constraint
        conn.execute(
            'ALTER TABLE "app_unique_together_a" '
            'DROP CONSTRAINT "app_unique_together_a_int_field_char_field_uniq"'
        )
        try:
            conn.execute(OLD_CODE, ["v1"])
        except psycopg.errors.InvalidColumnReference as exc:
            print(f"old code's INSERT … ON CONFLICT after the drop: {exc.diag.message_primary}")
            return verdict(True, "the old code's ON CONFLICT INSERT fails after the drop")
        return verdict(False, "the old code's ON CONFLICT INSERT fails after the drop")


if __name__ == "__main__":
    sys.exit(main())
