"""What the analysis knows of a table's keys: from the project state, or the live database."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from django.db.backends.utils import truncate_name

from django_safemigrate.analysis.context import StatementContext


@dataclasses.dataclass(frozen=True)
class Model:
    """A model of the project state whose table it is."""

    app_label: str
    name: str
    #: Column name -> field name, for the concrete fields.
    fields: Mapping[str, str]


@dataclasses.dataclass(frozen=True)
class Table:
    """The keys of a table: from its models in the project state, or the live database."""

    name: str
    #: Each a set of columns whose values identify at most one row (``ctid`` always does).
    keys: tuple[frozenset[str], ...]
    #: The models whose table it is (the one of the migration's app first).
    models: tuple[Model, ...]
    #: Whether anything (the project state, the live database) told the table's keys.
    known: bool
    #: The single-column primary key, when known.
    primary_key: str | None

    @classmethod
    def of(cls, table: str, ctx: StatementContext) -> Table:
        keys: list[frozenset[str]] = [frozenset({"ctid"})]
        models: list[Model] = []
        primary: str | None = None
        state = ctx.operation.from_state
        max_length = ctx.migration.connection.ops.max_name_length()
        for model_state in state.models.values() if state is not None else ():
            if model_state.options.get("proxy"):
                continue
            default = f"{model_state.app_label}_{model_state.name_lower}"
            db_table = model_state.options.get("db_table") or truncate_name(default, max_length)
            if db_table != table:
                continue
            model, model_keys, model_primary = _model_keys(model_state)
            models.append(model)
            keys += model_keys
            primary = primary or model_primary
        live = _live_keys(table, ctx)
        for columns, is_primary in live or ():
            keys.append(frozenset(columns))
            if is_primary and len(columns) == 1:
                primary = primary or columns[0]
        app_label = ctx.operation.app_label
        models.sort(key=lambda m: m.app_label != app_label)
        return cls(
            name=table,
            keys=tuple(dict.fromkeys(keys)),
            models=tuple(models),
            known=bool(models) or live is not None,
            primary_key=primary,
        )

    def describe_keys(self) -> str:
        """``id, sku or (shop, code)``: the keys but ctid, the primary key first."""
        named = sorted(
            (key for key in self.keys if key != {"ctid"}),
            key=lambda k: (k != {self.primary_key}, len(k), sorted(k)),
        )
        shown = [
            next(iter(key)) if len(key) == 1 else f"({', '.join(sorted(key))})" for key in named
        ]
        return shown[0] if len(shown) == 1 else f"{', '.join(shown[:-1])} or {shown[-1]}"


def _model_keys(model_state: Any) -> tuple[Model, list[frozenset[str]], str | None]:
    """The columns of a model state's concrete fields, its keys and its primary key column."""
    columns: dict[str, str] = {}  # field name -> column
    keys: list[frozenset[str]] = []
    primary: str | None = None
    composite: list[Any] = []
    for name, field in model_state.fields.items():
        if getattr(field, "many_to_many", False):
            continue
        field_names = getattr(field, "field_names", None)
        if field.primary_key and field_names:  # CompositePrimaryKey (Django 5.2): no column
            composite.append(field_names)
            continue
        is_fk = field.is_relation and (field.many_to_one or field.one_to_one)
        column = field.db_column or (f"{name}_id" if is_fk else name)
        columns[name] = column
        if field.primary_key:
            primary = column
        if field.unique:  # primary_key implies unique
            keys.append(frozenset({column}))
    if primary is None and not composite:
        # Django gives a model without a primary key an automatic "id".
        primary = columns["id"] = "id"
        keys.append(frozenset({"id"}))
    together = [*composite, *(model_state.options.get("unique_together") or ())]
    for constraint in model_state.options.get("constraints") or ():
        fields = getattr(constraint, "fields", None)
        # Only unconditional constraints on plain columns: a partial one (condition) allows
        # duplicates outside its predicate, an expression one says nothing of the columns.
        if (
            type(constraint).__name__ == "UniqueConstraint"
            and fields
            and getattr(constraint, "condition", None) is None
            and not getattr(constraint, "expressions", ())
        ):
            together.append(fields)
    for names in together:
        if all(name in columns for name in names):
            keys.append(frozenset(columns[name] for name in names))
    model = Model(
        app_label=str(model_state.app_label),
        name=str(model_state.name_lower),
        fields={column: name for name, column in columns.items()},
    )
    return model, keys, primary


def _live_keys(table: str, ctx: StatementContext) -> list[tuple[list[str], bool]] | None:
    """Key columns of each valid, total, plain unique index of ``table`` on the live database.

    ``None`` when the database the migration is applied to is not read (offline, or judging
    migrations applied already) or does not have the table.
    """
    mctx = ctx.migration
    catalog = mctx.catalog
    if not mctx.live or catalog is None or mctx.table_info(table) is None:
        return None

    def query(cursor: Any) -> list[tuple[list[str], bool]]:
        # A partial index (indpred) only makes its predicate's rows unique, an expression
        # index (indexprs) says nothing of a column, an invalid one (a failed CREATE UNIQUE
        # INDEX CONCURRENTLY) may cover duplicates; INCLUDE columns (past indnkeyatts) are
        # not part of the key.
        cursor.execute(
            "SELECT array_agg(a.attname::text ORDER BY k.n), i.indisprimary "
            "FROM pg_index i "
            "CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, n) "
            "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum "
            "WHERE i.indrelid = to_regclass(quote_ident(%s)) AND i.indisunique "
            "AND i.indisvalid AND i.indpred IS NULL AND i.indexprs IS NULL "
            "AND k.n <= i.indnkeyatts "
            "GROUP BY i.indexrelid, i.indisprimary",
            [table],
        )
        return [(list(columns), bool(primary)) for columns, primary in cursor.fetchall()]

    nothing: list[tuple[list[str], bool]] = []
    return catalog.read(("SM207.keys", table), query, nothing)
