"""The schema the migrations made, read from a Django connection's catalogs.

This app's own tables (the ledger and the reviews) and ``django_migrations`` are left out:
they record what happened to the database, they are not what its migrations describe (a
throwaway database is given the ledger's tables only if its walk applies this app's
migrations, and ``django_migrations`` holds a comment with the ledger's mark). So is the
archive schema (``SAFEMIGRATE['ARCHIVE_SCHEMA']``): the data kept from dropped columns and
tables, which no migration builds.
"""

from __future__ import annotations

from django.db.backends.base.base import BaseDatabaseWrapper

from django_safemigrate.conf import get_settings
from django_safemigrate.schema.catalog import Schema, read_schema

#: Relations named with this prefix belong to this app.
OWN_PREFIX = "django_safemigrate"
#: Django's record of applied migrations, and its id sequence.
RECORDER_RELATIONS = ("django_migrations", "django_migrations_id_seq")


def read_migrated_schema(connection: BaseDatabaseWrapper) -> Schema:
    with connection.cursor() as cursor:
        return read_schema(
            cursor,
            exclude_prefixes=(OWN_PREFIX,),
            exclude_relations=RECORDER_RELATIONS,
            exclude_schemas=(get_settings().archive_schema,),
        )
