"""What the rendering reads from the live schema, and how the schema editor asks for it.

Django's schema editor asks the live schema for the names of the constraints, indexes and
sequences it drops or alters, and whether a collation is deterministic. During the
analysis it asks the :class:`Catalog` instead (:class:`CatalogEditor` is mixed into the
backend's editor): the catalogs are read through the analysis's own channel, in its
read-only transaction, once per table. A read can only add facts: where the database has
the object, its real name; where it does not (its table does not exist yet, or there is
no database), the name Django gives such an object, which is also what a rendering
without a database uses. Live and offline rendering therefore emit the same statements.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any, TypeVar

from django.db.backends.utils import truncate_name

from django_safemigrate import djangocompat

T = TypeVar("T")

#: The savepoint the catalog reads return to when one of them fails, so that the read-only
#: transaction stays usable for the next.
SAVEPOINT = "safemigrate_rendering"


class Catalog:
    """What the rendering reads from the live schema; without a database it knows nothing.

    Reads run on the live connection's driver connection, inside the rendering's read-only
    transaction, each answer kept for the rest of the rendering (the database does not
    change while the analysis runs). A read that fails (a lock timeout, a catalog query a
    backend got wrong) returns to the savepoint and counts as "nothing found".
    """

    def __init__(self, driver: Any | None, introspection: Any) -> None:
        self._driver = driver
        self._introspection = introspection
        self._answers: dict[tuple[Any, ...], Any] = {}

    @property
    def live(self) -> bool:
        return self._driver is not None

    def read(self, key: tuple[Any, ...], query: Callable[[Any], T], default: T) -> T:
        if self._driver is None:
            return default
        if key in self._answers:
            return self._answers[key]  # type: ignore[no-any-return]
        import psycopg

        try:
            with psycopg.ClientCursor(self._driver) as cursor:
                answer = query(cursor)
        except psycopg.Error:
            with contextlib.suppress(psycopg.Error):  # a lost connection stays lost
                self._driver.execute(f"ROLLBACK TO SAVEPOINT {SAVEPOINT}")
            answer = default
        self._answers[key] = answer
        return answer

    def constraints(self, table: str) -> dict[str, Any]:
        """Django's introspection of ``table``'s constraints and indexes (``{}``: none known)."""
        return self.read(
            ("constraints", table),
            lambda cursor: dict(self._introspection.get_constraints(cursor, table)),
            {},
        )

    def sequence(self, table: str, column: str) -> str | None:
        sequences: list[dict[str, Any]] = self.read(
            ("sequences", table),
            lambda cursor: list(self._introspection.get_sequences(cursor, table)),
            [],
        )
        return next((s["name"] for s in sequences if s["column"] == column), None)

    def table_of_index(self, index: str) -> str | None:
        """The table of the index ``index`` (as the search path finds it), or ``None``."""

        def query(cursor: Any) -> str | None:
            cursor.execute(
                "SELECT t.relname FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid "
                "WHERE i.indexrelid = to_regclass(%s)",
                ['"' + index.replace('"', '""') + '"'],
            )
            row = cursor.fetchone()
            return str(row[0]) if row else None

        return self.read(("index table", index), query, None)

    def validated_checks(self, table: str) -> list[tuple[str, str]]:
        """Name and definition of each validated CHECK constraint of ``table``."""

        def query(cursor: Any) -> list[tuple[str, str]]:
            cursor.execute(
                "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE conrelid = to_regclass(%s) AND contype = 'c' AND convalidated",
                [table],
            )
            return [(str(name), str(definition)) for name, definition in cursor.fetchall()]

        return self.read(("checks", table), query, [])

    def domain_columns(self, domain: tuple[str, ...]) -> list[tuple[str, str]] | None:
        """(table, column) of each stored column of the domain ``domain`` (a qualified name)
        or of a domain based on it; ``None`` when the catalogs do not have the domain.

        These are the columns ``ALTER DOMAIN`` checks: those of tables and materialized
        views (not of views, which store nothing), through domains over the domain too.
        """

        def query(cursor: Any) -> list[tuple[str, str]] | None:
            cursor.execute("SELECT to_regtype(%s)::oid", [_qualified(domain)])
            row = cursor.fetchone()
            if row is None or row[0] is None:
                return None
            cursor.execute(
                "WITH RECURSIVE domains(oid) AS ("
                "  SELECT %s::oid"
                "  UNION SELECT t.oid FROM pg_type t JOIN domains d ON t.typbasetype = d.oid"
                "  WHERE t.typtype = 'd') "
                "SELECT c.relname, a.attname FROM pg_attribute a "
                "JOIN pg_class c ON c.oid = a.attrelid "
                "WHERE a.atttypid IN (SELECT oid FROM domains) AND a.attnum > 0 "
                "AND NOT a.attisdropped AND c.relkind IN ('r', 'm') "
                "ORDER BY c.relname, a.attnum",
                [row[0]],
            )
            return [(str(table), str(column)) for table, column in cursor.fetchall()]

        return self.read(("domain columns", domain), query, None)

    def schema_tables(self, schema: str) -> list[str] | None:
        """The tables (and materialized views) of ``schema``; ``None`` when it does not exist."""

        def query(cursor: Any) -> list[str] | None:
            cursor.execute("SELECT oid FROM pg_namespace WHERE nspname = %s", [schema])
            row = cursor.fetchone()
            if row is None:
                return None
            cursor.execute(
                "SELECT relname FROM pg_class WHERE relnamespace = %s "
                "AND relkind IN ('r', 'p', 'm') AND NOT relispartition ORDER BY relname",
                [row[0]],
            )
            return [str(name) for (name,) in cursor.fetchall()]

        return self.read(("schema tables", schema), query, None)

    def has_default_partition(self, table: str) -> bool | None:
        """Whether the partitioned table ``table`` has a default partition (``None``: unknown)."""

        def query(cursor: Any) -> bool | None:
            cursor.execute(
                "SELECT partdefid <> 0 FROM pg_partitioned_table WHERE partrelid = to_regclass(%s)",
                ['"' + table.replace('"', '""') + '"'],
            )
            row = cursor.fetchone()
            return bool(row[0]) if row else None

        return self.read(("default partition", table), query, None)

    def collation_is_deterministic(self, name: str) -> bool | None:
        def query(cursor: Any) -> bool | None:
            cursor.execute(
                "SELECT collisdeterministic FROM pg_collation WHERE collname = %s", [name]
            )
            row = cursor.fetchone()
            return bool(row[0]) if row else None

        return self.read(("collation", name), query, None)


def _qualified(name: tuple[str, ...]) -> str:
    """``("shop", "amount")`` → ``"shop"."amount"``, as ``to_regtype`` reads a name."""
    return ".".join('"' + part.replace('"', '""') + '"' for part in name)


class CatalogEditor(djangocompat.SchemaEditorHooks):
    """Answers the schema editor's questions about the live schema from the :class:`Catalog`.

    Mixed in before the backend's own editor class; ``self.connection`` is the rendering
    connection, which carries the catalog.
    """

    connection: Any

    def constraint_names(  # noqa: PLR0917  # Django's signature
        self,
        model: Any,
        column_names: Any = None,
        unique: Any = None,
        primary_key: Any = None,
        index: Any = None,
        foreign_key: Any = None,
        check: Any = None,
        type_: Any = None,
        exclude: Any = None,
    ) -> list[str]:
        table = model._meta.db_table
        wanted = None
        if column_names is not None:
            converter = self.connection.introspection.identifier_converter
            max_length = self.connection.ops.max_name_length()
            truncates = self.connection.features.truncates_names
            wanted = [
                converter(truncate_name(name, max_length) if truncates else name)
                for name in column_names
            ]
        # Django 6.1+ asks the database for a table renamed earlier in the same collected
        # SQL under the name it still has there.
        introspected = djangocompat.introspected_table(self, table)
        found = [
            name
            for name, info in self.connection.catalog.constraints(introspected).items()
            if (wanted is None or wanted == info["columns"])
            and (unique is None or info["unique"] == unique)
            and (primary_key is None or info["primary_key"] == primary_key)
            and (index is None or info["index"] == index)
            and (check is None or info["check"] == check)
            and (foreign_key is None or info["foreign_key"])
            and (type_ is None or info["type"] == type_)
            and not (exclude and name in exclude)
        ]
        if found:
            return found
        # Django only asks for a constraint its model state says exists (to drop or alter
        # it); where the database does not have it yet (or there is no database), it gets
        # the name Django gives such a constraint, so the statement is rendered and judged.
        suffix = (
            "_pk"
            if primary_key
            else "_fk"
            if foreign_key
            else "_uniq"
            if unique
            else "_check"
            if check
            else (f"_{type_}" if type_ else "_idx")
        )
        return [djangocompat.index_name(self, table, list(column_names or []), suffix=suffix)]

    def sequence_name(self, table: str, column: str) -> str:
        found = self.connection.catalog.sequence(table, column)
        return str(found) if found else f"{table}_{column}_seq"

    def collation_deterministic(self, collation_name: str) -> bool:
        # Collations are deterministic unless created with deterministic = false.
        found = self.connection.catalog.collation_is_deterministic(collation_name)
        return True if found is None else found

    # django-pg-zero-downtime-migrations reads the live schema itself (through a cursor of
    # its own) to drop a column's or a table's constraints explicitly. Its queries go
    # through the catalog channel; without a database they find nothing, and Django's own
    # drops (above) still render.

    def _get_constraints(self, cursor: Any, model: Any) -> list[Any]:
        read = super()._get_constraints  # type: ignore[misc]
        renames = tuple(sorted(getattr(self, "collected_table_renames", {}).items()))
        return self.connection.catalog.read(  # type: ignore[no-any-return]
            ("zero-downtime constraints", model._meta.db_table, renames),
            lambda real: list(read(real, model)),
            [],
        )

    def _get_indexes(self, cursor: Any, model: Any) -> list[Any]:
        read = super()._get_indexes  # type: ignore[misc]
        renames = tuple(sorted(getattr(self, "collected_table_renames", {}).items()))
        return self.connection.catalog.read(  # type: ignore[no-any-return]
            ("zero-downtime indexes", model._meta.db_table, renames),
            lambda real: list(read(real, model)),
            [],
        )
