"""The table sizes the gate judges with (``analysis.database.table_sizes``): estimates from
``pg_class`` for the tables of the search path, partitioned tables counted by their leaf
partitions, and nothing of the other schemas of the database (tenants)."""

from __future__ import annotations

import pytest
from django.db import connection

from django_safemigrate.analysis.database import table_sizes

pytestmark = pytest.mark.django_db(transaction=True)

SETUP = [
    "CREATE SCHEMA sz_a",
    "CREATE SCHEMA sz_b",
    "CREATE TABLE sz_a.item (id bigserial PRIMARY KEY, name text)",
    "CREATE INDEX ON sz_a.item (name)",
    "INSERT INTO sz_a.item (name) SELECT 'x' || g FROM generate_series(1, 5000) g",
    # Partitioned, two levels, one partition in another schema.
    "CREATE TABLE sz_a.ev (id bigint, at date) PARTITION BY RANGE (at)",
    "CREATE TABLE sz_a.ev_2025 PARTITION OF sz_a.ev FOR VALUES FROM ('2025-01-01') "
    "TO ('2026-01-01') PARTITION BY RANGE (at)",
    "CREATE TABLE sz_a.ev_2025a PARTITION OF sz_a.ev_2025 FOR VALUES FROM ('2025-01-01') "
    "TO ('2025-07-01')",
    "CREATE TABLE sz_b.ev_2026 PARTITION OF sz_a.ev FOR VALUES FROM ('2026-01-01') "
    "TO ('2027-01-01')",
    "INSERT INTO sz_a.ev SELECT g, '2025-02-01' FROM generate_series(1, 3000) g",
    "INSERT INTO sz_a.ev SELECT g, '2026-02-01' FROM generate_series(1, 2000) g",
    # Another tenant's table of the same name.
    "CREATE TABLE sz_b.item (id bigserial PRIMARY KEY)",
    "INSERT INTO sz_b.item SELECT FROM generate_series(1, 100)",
    "ANALYZE sz_a.item, sz_a.ev, sz_b.item",
]


@pytest.fixture
def schemas():
    with connection.cursor() as cursor:
        for statement in SETUP:
            cursor.execute(statement)
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP SCHEMA sz_a, sz_b CASCADE")
            cursor.execute("SET search_path TO DEFAULT")


def _pages(cursor, *names: str) -> int:
    cursor.execute(
        "SELECT sum(c.relpages + COALESCE(t.relpages, 0)) FROM pg_class c "
        "LEFT JOIN pg_class t ON t.oid = c.reltoastrelid "
        "WHERE c.oid = ANY (%s::regclass[]) OR c.oid IN (SELECT indexrelid FROM pg_index "
        "WHERE indrelid = ANY (%s::regclass[]))",
        [list(names), list(names)],
    )
    return int(cursor.fetchone()[0]) * 8192


def test_sizes_of_the_search_paths_tables_with_partitions_summed(schemas):
    with connection.cursor() as cursor:
        cursor.execute("SET search_path TO sz_a")
        sizes = table_sizes(connection)
        expected_item = _pages(cursor, "sz_a.item")
        expected_ev = _pages(cursor, "sz_a.ev_2025a", "sz_b.ev_2026")
    assert set(sizes) == {"item", "ev", "ev_2025", "ev_2025a"}  # nothing of sz_b's own
    assert sizes["item"].rows == 5000
    assert sizes["item"].bytes == expected_item
    # A partitioned table: its leaf partitions, at every level and in any schema.
    assert sizes["ev"].rows == 5000
    assert sizes["ev"].bytes == expected_ev
    assert sizes["ev_2025"].rows == 3000
    assert sizes["ev_2025a"].rows == 3000


def test_another_schema_on_the_path_is_measured_as_its_own(schemas):
    with connection.cursor() as cursor:
        cursor.execute("SET search_path TO sz_b")
        sizes = table_sizes(connection)
    assert set(sizes) == {"item", "ev_2026"}
    assert sizes["item"].rows == 100
    assert sizes["ev_2026"].rows == 2000
