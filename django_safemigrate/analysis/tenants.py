"""Judging a schema-per-tenant project's migrations where they really run.

With django-tenants, the database router migrates a tenant app only in tenant schemas:
in the ``public`` schema each of its operations is a no-op. Rendered there, a tenant
app's ``RemoveField`` emits no SQL and would be judged safe, though it drops a column in
every tenant. So an analysis on a connection set to the public schema renders such a
migration as a tenant schema would: the router is asked with the connection pointed at
a tenant for as long as the migration is judged. Nothing runs on the database for it
(only the connection object's schema name changes, for as long as the migration is
judged; the session's ``search_path`` is left as it is).

This is only for judging. What a run executes is rendered again by the step runner in
the schema the run is really in, where the router's answer stands.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from django.db import connections, router
from django.db.backends.base.base import BaseDatabaseWrapper

#: The schema name the connection is pointed at while a tenant app is judged: any name
#: but the public schema's makes the router answer for tenants.
TENANT_CONTEXT = "safemigrate_any_tenant"


def _public_schema(connection: BaseDatabaseWrapper) -> str | None:
    """The public schema's name when ``connection`` is django-tenants' and set to it."""
    if not hasattr(connection, "set_tenant") or not hasattr(connection, "schema_name"):
        return None
    try:
        from django_tenants.utils import get_public_schema_name, has_multi_type_tenants
    except ImportError:
        return None
    if has_multi_type_tenants():
        # HAS_MULTI_TYPE_TENANTS: each tenant type has its own apps, so which type to
        # judge for is not one answer.
        return None
    public = get_public_schema_name()
    return public if connection.schema_name == public else None


@contextlib.contextmanager
def where_it_runs(connection: BaseDatabaseWrapper, app_label: str) -> Iterator[bool]:
    """Judge ``app_label``'s migrations in a tenant schema when ``connection`` is set to
    the public schema and the router migrates the app in tenants only; yields whether it
    did."""
    # The router asks the alias's connection, whatever wrapper renders (offline, one).
    connection = connections[connection.alias]
    if (
        _public_schema(connection) is None
        or router.allow_migrate(connection.alias, app_label) is not False
    ):
        yield False
        return
    conn: Any = connection
    saved = conn.schema_name
    # The attribute the router reads, and only it: django-tenants' set_tenant() would also
    # run the project's EXTRA_SET_TENANT_METHOD and make the next cursor change the
    # session's search_path.
    conn.schema_name = TENANT_CONTEXT
    try:
        if router.allow_migrate(connection.alias, app_label) is False:
            # Migrated nowhere on this database: the public schema's answer stands.
            conn.schema_name = saved
            yield False
            return
        yield True
    finally:
        conn.schema_name = saved
