"""Django's ``flush``, keeping this app's tables as it keeps ``django_migrations``.

The ledger, the reviews and the other governance records describe the history of the
schema, not the data: flushing the data leaves them, like the migration history, in
place. The database refuses to ``TRUNCATE`` the append-only ones anyway (a trigger),
and Django's test framework flushes the database after every ``TransactionTestCase``.
Everything else is Django's command.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.apps import apps
from django.core.management.commands import flush as django_flush
from django.core.management.sql import sql_flush


def governance_tables() -> set[str]:
    ours = apps.get_app_config("django_safemigrate")
    return {model._meta.db_table for model in ours.get_models()}


def sql_flush_keeping_governance(
    style: Any, connection: Any, reset_sequences: bool = True, allow_cascade: bool = False
) -> list[str]:
    """Django's ``sql_flush`` without this app's tables."""
    keep = governance_tables()
    tables = [
        table
        for table in connection.introspection.django_table_names(
            only_existing=True, include_views=False
        )
        if table not in keep
    ]
    statements: list[str] = connection.ops.sql_flush(
        style, tables, reset_sequences=reset_sequences, allow_cascade=allow_cascade
    )
    return statements


@contextmanager
def keeping_governance() -> Iterator[None]:
    original = getattr(django_flush, "sql_flush", sql_flush)
    setattr(django_flush, "sql_flush", sql_flush_keeping_governance)  # noqa: B010
    try:
        yield
    finally:
        setattr(django_flush, "sql_flush", original)  # noqa: B010


class Command(django_flush.Command):
    def handle(self, **options: Any) -> None:
        with keeping_governance():
            super().handle(**options)
