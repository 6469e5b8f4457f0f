"""Two schemas compared object by object: what is missing, extra, or different.

A row of :class:`~django_safemigrate.schema.catalog.Schema` starts with the fields that name
its object (a table; a table and a column; a table and an index …) and goes on with what
PostgreSQL says about it. Two rows with the same name and other fields are one object
changed; a name on one side only is an object missing or extra. An object that belongs to
a table missing or extra as a whole (its columns, indexes, constraints, triggers) is not
listed again, and a sequence or view is listed as a sequence or view, not also as a
relation.
"""

from __future__ import annotations

import dataclasses
import enum
import fnmatch
from collections.abc import Iterable, Mapping, Sequence

from django_safemigrate.schema.catalog import Schema


class Change(enum.StrEnum):
    #: Expected (before the migration; built by the migrations) but not found.
    MISSING = "missing"
    #: Found but not expected.
    EXTRA = "extra"
    #: On both sides, described differently.
    DIFFERENT = "different"


@dataclasses.dataclass(frozen=True)
class Kind:
    """How the rows of one field of :class:`Schema` read."""

    field: str
    #: What one object is called ("index"); relations are named by their relkind.
    noun: str
    #: How many leading fields of a row name the object.
    key: int
    #: Whether the first field is the table the object belongs to.
    on_table: bool
    #: The names of the other fields, in order.
    labels: tuple[str, ...]


KINDS = (
    Kind("relations", "relation", 1, False, ("kind", "persistence", "comment")),
    Kind(
        "columns",
        "column",
        2,
        True,
        ("type", "not null", "default", "identity", "generated", "collation", "comment"),
    ),
    Kind("indexes", "index", 2, True, ("definition", "valid", "ready")),
    Kind(
        "constraints",
        "constraint",
        2,
        True,
        ("type", "definition", "validated", "deferrable", "initially deferred"),
    ),
    Kind(
        "sequences",
        "sequence",
        1,
        False,
        ("type", "start", "increment", "minimum", "maximum", "cache", "cycle", "owned by"),
    ),
    Kind("triggers", "trigger", 2, True, ("definition", "enabled")),
    Kind("functions", "function", 1, False, ("definition",)),
    Kind("views", "view", 1, False, ("definition",)),
    Kind("types", "type", 1, False, ("kind", "base type", "labels")),
    Kind("extensions", "extension", 1, False, ("version", "schema")),
)

#: ``pg_class.relkind`` in words.
RELKINDS = {
    "r": "table",
    "p": "partitioned table",
    "v": "view",
    "m": "materialized view",
    "S": "sequence",
    "f": "foreign table",
}
#: Relations another kind already lists when they are missing or extra.
_LISTED_ELSEWHERE = {"v", "m", "S"}


@dataclasses.dataclass(frozen=True)
class Difference:
    """One object that is not the same on both sides."""

    #: "table", "column", "index", "constraint", "sequence", "trigger", "view", …
    kind: str
    #: The object's name: ``shop_item_sku_idx``, ``shop_item.price`` (schema ``public`` left
    #: out, other schemas named).
    name: str
    change: Change
    #: The table it belongs to, for the objects of a table.
    table: str | None
    #: Its description on the expected side and the found side (``None``: not there).
    expected: Mapping[str, str] | None
    found: Mapping[str, str] | None

    @property
    def fields(self) -> tuple[str, ...]:
        """The fields that differ (for :attr:`Change.DIFFERENT`)."""
        if self.expected is None or self.found is None:
            return ()
        return tuple(key for key in self.expected if self.expected[key] != self.found.get(key))

    def what(self) -> str:
        """``index shop_item_sku_idx on shop_item``, ``column shop_item.price``."""
        if self.table and self.kind != "column":
            return f"{self.kind} {self.name} on {self.table}"
        return f"{self.kind} {self.name}"

    def as_json(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "name": self.name,
            "change": self.change.value,
            "table": self.table,
            "fields": list(self.fields),
            "expected": dict(self.expected) if self.expected is not None else None,
            "found": dict(self.found) if self.found is not None else None,
        }

    def names(self) -> tuple[str, ...]:
        """The names an ignore pattern is matched against: the object's, and its table's."""
        found = [self.name, self.name.split("(", 1)[0]]
        if self.table:
            found.append(self.table)
        return tuple(found)


def short(qualified: str) -> str:
    """A qualified name without the default schema: ``public.shop_item`` → ``shop_item``."""
    return qualified.removeprefix("public.")


def compare(
    expected: Schema, found: Schema, *, ignore: Sequence[str] = ()
) -> tuple[list[Difference], int]:
    """What differs from ``expected`` in ``found``, and how many differences ``ignore``
    (shell-style patterns of object or table names, ``fnmatch``) left out."""
    gone_tables = _relations_only_in(expected, found)
    new_tables = _relations_only_in(found, expected)
    differences: list[Difference] = []
    for kind in KINDS:
        mine = _by_key(getattr(expected, kind.field), kind.key)
        theirs = _by_key(getattr(found, kind.field), kind.key)
        for key in sorted(mine.keys() | theirs.keys()):
            before, after = mine.get(key), theirs.get(key)
            if before == after:
                continue
            if before is None:
                change = Change.EXTRA
            elif after is None:
                change = Change.MISSING
            else:
                change = Change.DIFFERENT
            row = before or after
            assert row is not None
            if (
                kind.field == "relations"
                and change is not Change.DIFFERENT
                and row[1] in _LISTED_ELSEWHERE
            ):
                continue
            if kind.on_table and (
                (change is Change.MISSING and key[0] in gone_tables)
                or (change is Change.EXTRA and key[0] in new_tables)
            ):
                continue
            differences.append(_difference(kind, key, change, before, after))
    kept = [d for d in differences if not _ignored(d, ignore)]
    return kept, len(differences) - len(kept)


def _relations_only_in(left: Schema, right: Schema) -> set[str]:
    return {row[0] for row in left.relations} - {row[0] for row in right.relations}


def _by_key(rows: Iterable[tuple[str, ...]], size: int) -> dict[tuple[str, ...], tuple[str, ...]]:
    return {row[:size]: row for row in rows}


def _difference(
    kind: Kind,
    key: tuple[str, ...],
    change: Change,
    before: tuple[str, ...] | None,
    after: tuple[str, ...] | None,
) -> Difference:
    row = before or after
    assert row is not None
    noun = RELKINDS.get(row[1], "relation") if kind.field == "relations" else kind.noun
    table = short(key[0]) if kind.on_table else None
    if kind.field == "columns":
        name = f"{table}.{key[1]}"
    elif kind.on_table:
        name = key[1]
    else:
        name = short(key[0])
    return Difference(
        kind=noun,
        name=name,
        change=change,
        table=table,
        expected=_described(kind, before),
        found=_described(kind, after),
    )


def _described(kind: Kind, row: tuple[str, ...] | None) -> dict[str, str] | None:
    if row is None:
        return None
    values = row[kind.key :]
    labels = kind.labels
    if len(values) == len(labels) + 1:  # read with column_order: the position comes first
        labels = ("position", *labels)
    return dict(zip(labels, values, strict=True))


def _ignored(difference: Difference, patterns: Sequence[str]) -> bool:
    return any(
        fnmatch.fnmatchcase(name, pattern) for pattern in patterns for name in difference.names()
    )
