"""What the verification scripts share: a scratch database on DATABASE_URL's server.

Each script in this folder checks, on a real PostgreSQL, one claim that a peer's
asserted verdict is wrong (``class = "their error"`` in ``disagreements.toml``). It prints
what it measured and exits 0 when the claim holds, 1 when it does not.
"""

from __future__ import annotations

import os
import secrets
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent.parent))
from _common import create_database, drop_database, server_url, server_version, with_database

ROWS = 20_000


@contextmanager
def scratch(script: str) -> Iterator[str]:
    """The URL of a database created for the check and dropped after it."""
    maintenance = server_url(script)
    name = f"sm_verify_{os.getpid()}_{secrets.token_hex(3)}"
    create_database(maintenance, name)
    print(f"PostgreSQL {server_version(maintenance)}, scratch database {name}")
    try:
        yield with_database(maintenance, name)
    finally:
        drop_database(maintenance, name)


def connect(url: str) -> psycopg.Connection:
    return psycopg.connect(url, autocommit=True)


def verdict(holds: bool, claim: str) -> int:
    print(("HOLDS: " if holds else "DOES NOT HOLD: ") + claim)
    return 0 if holds else 1
