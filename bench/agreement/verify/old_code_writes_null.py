"""django-migration-linter app_make_not_null_with_lib_default.0002: not backward compatible.

The migration makes ``col`` NOT NULL and sets a database default (``AddDefaultValue``). The
linter accepts it because of the default. But the old code's model still has
``null=True``: Django's INSERT names every field, so an object created without ``col``
sends ``col = NULL`` explicitly, and a database default applies only to a column left
out of the INSERT. On a 20,000-row table, after the migration's statements, the old
code's INSERT fails with a not-null violation.
"""

from __future__ import annotations

import sys

import psycopg
from _pg import ROWS, connect, scratch, verdict

TABLE = '"app_make_not_null_with_lib_default_a"'
MIGRATION = [
    # sqlmigrate of the migration (AlterField, then AddDefaultValue)
    f"""ALTER TABLE {TABLE} ALTER COLUMN "col" SET DEFAULT 'avalue'""",
    f"""UPDATE {TABLE} SET "col" = 'avalue' WHERE "col" IS NULL""",
    f"""ALTER TABLE {TABLE} ALTER COLUMN "col" SET NOT NULL""",
    f"""ALTER TABLE {TABLE} ALTER COLUMN "col" DROP DEFAULT""",
    f"""ALTER TABLE {TABLE} ALTER COLUMN "col" SET DEFAULT 'avalue'""",
]
OLD_CODE_INSERT = 'INSERT INTO "app_make_not_null_with_lib_default_a" ("col") VALUES (%s)'


def main() -> int:
    with scratch("verify/old_code_writes_null.py") as url, connect(url) as conn:
        conn.execute(
            'CREATE TABLE "app_make_not_null_with_lib_default_a" '
            '("id" serial PRIMARY KEY, "col" varchar(10) NULL)'
        )
        conn.execute(
            'INSERT INTO "app_make_not_null_with_lib_default_a" ("col") '
            "SELECT CASE WHEN g %% 2 = 0 THEN 'x' END FROM generate_series(1, %s) g",
            [ROWS],
        )
        conn.execute(OLD_CODE_INSERT, [None])  # the old code works before the migration
        with conn.transaction():
            for statement in MIGRATION:
                conn.execute(statement)
        try:
            conn.execute(OLD_CODE_INSERT, [None])
        except psycopg.errors.NotNullViolation as exc:
            print(f"old code's INSERT after the migration: {exc.diag.message_primary}")
            return verdict(True, "the old code's INSERT (col = NULL) fails after the migration")
        return verdict(False, "the old code's INSERT (col = NULL) fails after the migration")


if __name__ == "__main__":
    sys.exit(main())
