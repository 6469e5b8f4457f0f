"""A column type change that rewrites the table, online.

Until the expand / backfill / switch sequence is in place, a rewriting type change on an
existing table has no online form here: it is refused (:class:`NotOnline`), so the gate
asks for a review before it runs in its blocking form.
"""

from __future__ import annotations

from typing import Any

from django_safemigrate.online.forms import NotOnline, OnlineForm
from django_safemigrate.sql import Statement


def column_facts(cursor: Any, table: str, column: str, schema: str | None = None) -> Any:
    return None


def type_change_form(
    original: Statement,
    *,
    table: str,
    column: str,
    new_type: str,
    using: str | None,
    facts: Any,
    pg_version: int,
) -> OnlineForm | NotOnline:
    return NotOnline(
        original,
        f"changing {table}.{column} to {new_type} rewrites the table under ACCESS EXCLUSIVE, "
        "and no online form of it is available here",
    )
