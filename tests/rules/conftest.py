"""Rule tests render SQL with the test database's connection (introspection included)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _database(db):
    """Every rule test may touch the test database (read-only introspection)."""
