"""A column type change that rewrites the table, run as expand / backfill / switch.

``ALTER TABLE t ALTER COLUMN c TYPE bigint`` copies every row of ``t`` and rebuilds
every index under an ACCESS EXCLUSIVE lock (rule SM107 decides which changes do). Its
online form does the same work with the table open for reads and writes:

1. *expand*, one short transaction: a shadow column of the new type (nullable, no
   default) and a ``BEFORE INSERT OR UPDATE OF c`` trigger that sets it from ``c``
   through the ``USING`` expression, so every write of the running code keeps it in step;
2. *backfill*, one ``DO`` block run alone: the existing rows in keyset batches by primary
   key, each batch committed on its own (``COMMIT`` in a ``DO`` block, PostgreSQL 11+);
   a rerun only rewrites the rows whose shadow differs from the conversion;
3. the column's ``CHECK`` constraints (and ``IS NOT NULL`` when the column is ``NOT
   NULL``) added to the shadow ``NOT VALID``, each validated alone (SHARE UPDATE
   EXCLUSIVE: traffic continues);
4. each index on the column built again on the shadow ``CONCURRENTLY``, alone;
5. *switch*, one short transaction of catalog changes: ``SET NOT NULL`` (no scan thanks
   to the validated check, PostgreSQL 12+), the old column dropped (with its indexes and
   constraints), the shadow renamed to it, the indexes and constraints renamed to the old
   names, unique constraints attached ``USING INDEX``, the default, statistics target and
   comments set again.

Afterwards the table's catalog definition is what the plain ``ALTER`` gives, except that
the column is now the table's last one (and the old column stays as a dropped attribute
whose space is reclaimed as rows are rewritten).

Where the catalogs show something the sequence cannot carry over exactly (a primary or
foreign key on the column, a view on it, a trigger the backfill would fire, a
partitioned table…) the statement is :class:`NotOnline`, with the reason.

See https://www.postgresql.org/docs/current/sql-altertable.html#SQL-ALTERTABLE-NOTES and
https://www.postgresql.org/docs/current/plpgsql-transactions.html.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

from pglast import ast, parse_sql
from pglast.enums import A_Expr_Kind, AlterTableType
from pglast.parser import ParseError
from pglast.stream import RawStream

from django_safemigrate.online.forms import PAUSE, NotOnline, OnlineForm, OnlineStep
from django_safemigrate.online.typechange_facts import (
    CheckFacts,
    ColumnFacts,
    IndexFacts,
    column_facts,
    derived_name,
    sync_trigger_name,
)
from django_safemigrate.sql import Statement

__all__ = ["ColumnFacts", "column_facts", "type_change_form"]

#: Rows per backfill batch: each batch's row locks last one short transaction.
BATCH_ROWS = 2000


# --------------------------------------------------------------------------------------
# Names of the objects the sequence creates
# --------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Names:
    schema: str | None
    table: str
    column: str

    @property
    def relation(self) -> str:
        if self.schema is None:
            return quote(self.table)
        return f"{quote(self.schema)}.{quote(self.table)}"

    def qualified(self, name: str) -> str:
        return name if self.schema is None else f"{quote(self.schema)}.{name}"

    @property
    def shadow(self) -> str:
        return derived_name(self.column, "__sm_new")

    @property
    def trigger(self) -> str:
        return sync_trigger_name(self.column)

    @property
    def function(self) -> str:
        return derived_name(f"{self.table}__{self.column}", "__sm_sync")

    @property
    def marker(self) -> str:
        """The comment on the shadow column: whose it is."""
        return f"django_safemigrate: {self.column} in its new type, while its type changes online"

    @property
    def not_null_check(self) -> str:
        return derived_name(f"{self.table}_{self.column}", "__sm_notnull")

    @staticmethod
    def temporary(name: str) -> str:
        return derived_name(name, "__sm_new")


def quote(name: str) -> str:
    """An identifier, always double-quoted (so the statements never depend on case)."""
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    body = text.replace("'", "''")
    if "\\" in body:
        return "E'" + body.replace("\\", "\\\\") + "'"
    return f"'{body}'"


# --------------------------------------------------------------------------------------
# The form
# --------------------------------------------------------------------------------------


def type_change_form(
    original: Statement,
    *,
    table: str,
    column: str,
    new_type: str,
    using: str | None,
    facts: ColumnFacts | None,
    pg_version: int,
) -> OnlineForm | NotOnline:
    """The online form of ``ALTER TABLE table ALTER COLUMN column TYPE new_type [USING …]``.

    ``using`` is the ``USING`` expression as SQL text; when it is ``None`` and the
    statement has one, the statement's is used (the expression PostgreSQL would run is
    what the shadow must get). ``facts`` ``None`` (no database) gives the sequence for the
    column alone: indexes, constraints, the default and the key are read from the
    database when the deploy plans its steps.
    """
    if pg_version < 12:
        return NotOnline(
            original,
            f"PostgreSQL {pg_version} cannot run the online type change (it needs COMMIT in a "
            "DO block and SET NOT NULL through a validated CHECK, PostgreSQL 12+): run the "
            "plain ALTER in a maintenance window.",
        )
    if facts is not None and facts.blockers:
        return NotOnline(original, facts.blockers[0])
    change = _parse_change(original, column, new_type, using)
    if isinstance(change, str):
        return NotOnline(original, change)
    problem = _conversion_problem(change, table, column, facts)
    if problem is not None:
        return NotOnline(original, problem)
    names = _Names(facts.schema if facts is not None else None, table, column)
    plan = _Plan(names, change, facts)
    return OnlineForm(
        original=original,
        steps=tuple(plan.steps()),
        resolves=frozenset({"SM107"}),
        note=plan.note(),
    )


@dataclasses.dataclass(frozen=True)
class _Change:
    #: The new type as SQL (``bigint``, ``varchar(10) COLLATE "C"``).
    type_sql: str
    type_name: str
    #: The ``USING`` expression, ``None`` for PostgreSQL's assignment cast.
    using: Any | None


def _parse_change(
    original: Statement, column: str, new_type: str, using: str | None
) -> _Change | str:
    try:
        cast = _value(f"NULL::{new_type}")
    except (ParseError, AttributeError, IndexError):
        cast = None
    if not isinstance(cast, ast.TypeCast) or cast.typeName is None:
        return (
            f"The new type {new_type!r} does not read as a type: run the plain ALTER after review."
        )
    type_name = cast.typeName
    type_sql = RawStream()(type_name)
    definition = _column_def(original, column)
    if definition is not None and isinstance(definition.collClause, ast.CollateClause):
        type_sql += " " + RawStream()(definition.collClause)
    expression = None
    if using is not None:
        try:
            expression = _value(f"({using})")
        except (ParseError, AttributeError, IndexError):
            return (
                f"The USING expression {using!r} does not parse: run the plain ALTER after review."
            )
    elif definition is not None:
        expression = definition.raw_default
    return _Change(type_sql, _type_name(type_name), expression)


def _type_name(node: Any) -> str:
    """``int8`` for ``bigint``: the type's name as the parser spells it (schema left out)."""
    names = [str(name.sval).lower() for name in getattr(node, "names", None) or ()]
    return names[-1] if names else ""


def _statement(sql: str) -> Any:
    """The parse tree of one SQL statement."""
    return parse_sql(sql)[0].stmt


def _value(sql: str) -> Any:
    """The parse tree of one SQL expression."""
    return _statement(f"SELECT {sql}").targetList[0].val


def _column_def(original: Statement, column: str) -> Any | None:
    node = original.tree
    if not isinstance(node, ast.AlterTableStmt):
        return None
    for cmd in node.cmds or ():
        if (
            isinstance(cmd, ast.AlterTableCmd)
            and cmd.subtype == AlterTableType.AT_AlterColumnType
            and cmd.name == column
            and isinstance(cmd.def_, ast.ColumnDef)
        ):
            return cmd.def_
    return None


# --------------------------------------------------------------------------------------
# Which conversions the trigger and the backfill can compute exactly as the ALTER would
# --------------------------------------------------------------------------------------

#: Types whose conversions read the session's TimeZone, lc_monetary or search_path: the
#: trigger runs in the application's sessions, which may not share the deploy's settings.
_SESSION_TYPES = frozenset(
    [
        "timestamptz",
        "timetz",
        "money",
        "regclass",
        "regproc",
        "regprocedure",
        "regoper",
        "regoperator",
        "regtype",
        "regconfig",
        "regdictionary",
        "regnamespace",
        "regrole",
        "regcollation",
    ]
)
#: Types whose text form depends on DateStyle / IntervalStyle.
_DATETIME_TYPES = frozenset(["date", "time", "timestamp", "interval"])
_STRING_TYPES = frozenset(["text", "varchar", "bpchar", "char", "name", "unknown", "citext"])
#: Built-in functions that are immutable whatever their arguments' types.
_IMMUTABLE_FUNCTIONS = frozenset(
    [
        "abs",
        "btrim",
        "ceil",
        "ceiling",
        "char_length",
        "character_length",
        "floor",
        "left",
        "length",
        "lower",
        "ltrim",
        "md5",
        "octet_length",
        "replace",
        "right",
        "round",
        "rtrim",
        "sign",
        "substr",
        "substring",
        "trunc",
        "upper",
    ]
)
_OPERATORS = frozenset(["+", "-", "*", "/", "%", "||", "=", "<>", "!=", "<", ">", "<=", ">="])
_EXPR_KINDS = frozenset(
    {
        A_Expr_Kind.AEXPR_OP,
        A_Expr_Kind.AEXPR_DISTINCT,
        A_Expr_Kind.AEXPR_NOT_DISTINCT,
        A_Expr_Kind.AEXPR_NULLIF,
        A_Expr_Kind.AEXPR_IN,
        A_Expr_Kind.AEXPR_LIKE,
        A_Expr_Kind.AEXPR_ILIKE,
        A_Expr_Kind.AEXPR_BETWEEN,
        A_Expr_Kind.AEXPR_NOT_BETWEEN,
    }
)
_PLAIN_NODES = (
    ast.A_Const,
    ast.BoolExpr,
    ast.NullTest,
    ast.BooleanTest,
    ast.CaseExpr,
    ast.CaseWhen,
    ast.CoalesceExpr,
    ast.MinMaxExpr,
    ast.TypeName,
    ast.String,
    ast.Integer,
    ast.Float,
    ast.Boolean,
    tuple,
)


def _cast_reads_session(source: str | None, target: str) -> bool:
    if source == target:
        return False
    if target in _SESSION_TYPES or (source is not None and source in _SESSION_TYPES):
        return True
    if target in _DATETIME_TYPES and (source is None or source in _STRING_TYPES):
        return True
    return source is not None and source in _DATETIME_TYPES and target in _STRING_TYPES


def _conversion_problem(
    change: _Change, table: str, column: str, facts: ColumnFacts | None
) -> str | None:
    old = facts.type_name if facts is not None else None
    session = (
        "depends on the session's TimeZone, DateStyle, lc_monetary or search_path, which the "
        "application's sessions (where the trigger computes it) may not share"
    )
    if change.using is None:
        if old is not None and _cast_reads_session(old, change.type_name):
            return f"Converting {column} to {change.type_sql} {session}: run the plain ALTER."
        if old is None and change.type_name in _SESSION_TYPES:
            return f"Converting {column} to {change.type_sql} {session}: run the plain ALTER."
        return None
    for node in _walk(change.using):
        reason = _node_problem(node, table, column, old)
        if reason is not None:
            return f"The USING expression {reason}, so the online form cannot compute it exactly."
    top = change.using
    plain = isinstance(top, ast.TypeCast) and _refers_to(top.arg, table, column)
    if not plain and change.type_name in _SESSION_TYPES | _DATETIME_TYPES:
        return f"The USING expression to {change.type_sql} {session}: run the plain ALTER."
    if not plain and old in _SESSION_TYPES | _DATETIME_TYPES:
        return f"The USING expression on a {old} column {session}: run the plain ALTER."
    return None


def _node_problem(node: Any, table: str, column: str, old: str | None) -> str | None:
    if isinstance(node, ast.ColumnRef):
        if _refers_to(node, table, column):
            return None
        return f"references {RawStream()(node)}, not only {column}"
    if isinstance(node, ast.TypeCast):
        target = _type_name(node.typeName)
        source = old if _refers_to(node.arg, table, column) else _constant_type(node.arg)
        if _cast_reads_session(source, target):
            return f"casts to {target}, which reads the session's settings"
        return None
    if isinstance(node, ast.A_Expr):
        if node.kind not in _EXPR_KINDS:
            return f"uses {RawStream()(node)}"
        names = [str(n.sval) for n in node.name or ()]
        if node.kind == A_Expr_Kind.AEXPR_OP and (len(names) != 1 or names[0] not in _OPERATORS):
            return f"uses the operator {' '.join(names)}"
        return None
    if isinstance(node, ast.FuncCall):
        names = [str(n.sval).lower() for n in node.funcname or ()]
        builtin = len(names) == 1 or (len(names) == 2 and names[0] == "pg_catalog")
        aggregate = node.agg_star or node.agg_distinct or node.over or node.agg_order
        if not builtin or names[-1] not in _IMMUTABLE_FUNCTIONS or aggregate or node.agg_filter:
            return f"calls {'.'.join(names)}(), which is not known to be immutable"
        return None
    if isinstance(node, _PLAIN_NODES):
        return None
    return f"uses {type(node).__name__}, which the online form does not carry over"


def _constant_type(node: Any) -> str | None:
    if isinstance(node, ast.A_Const) and isinstance(node.val, ast.String):
        return "unknown"
    if isinstance(node, ast.A_Const) and isinstance(node.val, ast.Integer):
        return "int4"
    return None


def _refers_to(node: Any, table: str, column: str) -> bool:
    if not isinstance(node, ast.ColumnRef):
        return False
    fields = [f.sval if isinstance(f, ast.String) else None for f in node.fields or ()]
    return bool(fields) and fields[-1] == column and (len(fields) == 1 or fields[-2] == table)


def _walk(node: Any) -> Iterator[Any]:
    """``node`` and every node under it (its fields, recursively)."""
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, tuple):
            stack.extend(item)
            continue
        if not isinstance(item, ast.Node):
            continue
        yield item
        stack.extend(getattr(item, member) for member in item)


def _replace_column(tree: Any, table: str, column: str, fields: tuple[str, ...]) -> None:
    """Point every reference to ``column`` in ``tree`` at ``fields``, in place."""
    for node in _walk(tree):
        if isinstance(node, ast.ColumnRef) and _refers_to(node, table, column):
            node.fields = tuple(ast.String(sval=name) for name in fields)
        elif isinstance(node, ast.IndexElem) and node.name == column:
            node.name = fields[-1]


def _expression(change: _Change, table: str, column: str, fields: tuple[str, ...]) -> str:
    """The conversion as SQL, reading the column through ``fields`` (``new``, ``c``)."""
    # A fresh tree each time: the replacement happens in place.
    tree = _value(RawStream()(change.using) if change.using is not None else quote(column))
    _replace_column(tree, table, column, fields)
    return str(RawStream()(tree))


# --------------------------------------------------------------------------------------
# The steps
# --------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Plan:
    names: _Names
    change: _Change
    facts: ColumnFacts | None

    def steps(self) -> Iterator[OnlineStep]:
        yield self._expand()
        yield self._backfill()
        facts = self.facts
        if facts is not None:
            yield from self._constraints(facts)
            for index in facts.indexes:
                yield OnlineStep(
                    (self._index_sql(index),),
                    transactional=False,
                    purpose=f"build index {index.name} again on the new column, concurrently",
                )
        yield self._switch()

    def note(self) -> str:
        n = self.names
        return (
            f"{n.column} is converted to {self.change.type_sql} through a new column "
            f"{n.shadow}: a trigger keeps it in step with every write, the existing rows are "
            f"filled in batches of {BATCH_ROWS:,} by primary key, its constraints are validated "
            "and its indexes built concurrently, then a short switch drops the old column and "
            f"renames the new one. {n.column} becomes the table's last column (SELECT * and "
            "COPY without a column list see it at the end); the old column's space is reclaimed "
            "only as rows are rewritten; from the first step on, a write whose value does not "
            "convert fails, as it would after the plain ALTER."
        )

    # expand ---------------------------------------------------------------------------

    def _expand(self) -> OnlineStep:
        n = self.names
        table = n.relation
        function = n.qualified(quote(n.function))
        from_new = _expression(self.change, n.table, n.column, ("new", n.column))
        from_row = _expression(self.change, n.table, n.column, (n.column,))
        body = f"\nBEGIN\n  NEW.{quote(n.shadow)} := {from_new};\n  RETURN NEW;\nEND\n"
        tag = _dollar_tag(body)
        marker = _literal(n.marker)
        guard = (
            f"\nBEGIN\n  IF EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = "
            f"{_literal(table)}::regclass AND attname = {_literal(n.shadow)} AND NOT attisdropped "
            f"AND col_description(attrelid, attnum) IS DISTINCT FROM {marker}) THEN\n"
            f"    RAISE EXCEPTION {_literal(_guard_message(n))};\n  END IF;\nEND\n"
        )
        statements = (
            # The shadow's name is taken by a column that is not a shadow (its comment
            # says whose it is): stop rather than drop it below.
            f"DO {_dollar_tag(guard)}{guard}{_dollar_tag(guard)}",
            # A leftover of an expand that committed but was not recorded (nothing after
            # it ran) or of an abandoned attempt with another type: start again.
            f"ALTER TABLE {table} DROP COLUMN IF EXISTS {quote(n.shadow)}",
            f"ALTER TABLE {table} ADD COLUMN {quote(n.shadow)} {self.change.type_sql}",
            f"COMMENT ON COLUMN {table}.{quote(n.shadow)} IS {marker}",
            # Fails here, before any trigger exists, if PostgreSQL cannot assign the
            # conversion to the new type (the ALTER would have refused it too).
            f"UPDATE {table} SET {quote(n.shadow)} = {from_row} WHERE false",
            # search_path of the deploy: the expression's names resolve as in the ALTER,
            # whatever the application's sessions use.
            f"CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql "
            f"SET search_path FROM CURRENT AS {tag}{body}{tag}",
            f"DROP TRIGGER IF EXISTS {quote(n.trigger)} ON {table}",
            f"CREATE TRIGGER {quote(n.trigger)} BEFORE INSERT OR UPDATE OF {quote(n.column)} "
            f"ON {table} FOR EACH ROW EXECUTE FUNCTION {function}()",
            # Also for writes made with session_replication_role = replica (logical
            # replication's apply workers, restores with --disable-triggers): a write the
            # trigger missed after its batch was filled would keep a stale value.
            f"ALTER TABLE {table} ENABLE ALWAYS TRIGGER {quote(n.trigger)}",
        )
        return OnlineStep(
            statements,
            transactional=True,
            purpose=(
                f"add the new column {n.shadow} ({self.change.type_sql}) and the trigger that "
                f"sets it from {n.column} on every insert and update"
            ),
        )

    # backfill -------------------------------------------------------------------------

    def _backfill(self) -> OnlineStep:
        n = self.names
        key = self.facts.primary_key if self.facts is not None else ("id",)
        table = n.relation
        expression = _expression(self.change, n.table, n.column, (n.column,))
        lows = [f"safemigrate_lo_{i}" for i in range(1, len(key) + 1)]
        highs = [f"safemigrate_hi_{i}" for i in range(1, len(key) + 1)]
        cols = ", ".join(quote(k) for k in key)
        desc = ", ".join(f"{quote(k)} DESC" for k in key)
        row = f"({cols})" if len(key) > 1 else cols

        def tup(names: list[str]) -> str:
            return f"({', '.join(names)})" if len(names) > 1 else names[0]

        def next_batch(where: str) -> str:
            return (
                f"SELECT {cols} INTO {', '.join(highs)} FROM (SELECT {cols} FROM {table}"
                f"{where} ORDER BY {cols} LIMIT {BATCH_ROWS}) AS batch ORDER BY {desc} LIMIT 1;"
            )

        def update(where: str) -> str:
            return (
                f"UPDATE {table} SET {quote(n.shadow)} = {expression} WHERE {where}"
                f"{row} <= {tup(highs)} AND {quote(n.shadow)} IS DISTINCT FROM ({expression});"
            )

        declare = "".join(
            f"  {var} {table}.{quote(k)}%TYPE;\n"
            for k, pair in zip(key, zip(lows, highs, strict=True), strict=True)
            for var in pair
        )
        after = f"{row} > {tup(lows)}"
        body = (
            f"\nDECLARE\n{declare}  safemigrate_started boolean := false;\n"
            "  safemigrate_batch_began timestamptz;\nBEGIN\n  LOOP\n"
            "    safemigrate_batch_began := clock_timestamp();\n"
            f"    IF safemigrate_started THEN\n      {next_batch(f' WHERE {after}')}\n"
            f"    ELSE\n      {next_batch('')}\n    END IF;\n"
            "    EXIT WHEN NOT FOUND;\n"
            f"    IF safemigrate_started THEN\n      {update(f'{after} AND ')}\n"
            f"    ELSE\n      {update('')}\n    END IF;\n"
            + "".join(f"    {lo} := {hi};\n" for lo, hi in zip(lows, highs, strict=True))
            + "    safemigrate_started := true;\n    COMMIT;\n"
            + f"    {PAUSE}\n  END LOOP;\nEND\n"
        )
        tag = _dollar_tag(body)
        by = f"its primary key ({', '.join(key)})"
        if self.facts is None:
            by = 'the primary key (read from the database at deploy; shown here as "id")'
        return OnlineStep(
            (f"DO {tag}{body}{tag}",),
            transactional=False,
            purpose=(
                f"fill {n.shadow} for the existing rows, {BATCH_ROWS:,} rows a transaction by "
                f"{by}, pausing as long as each batch took; a rerun rewrites only the rows "
                "not yet converted"
            ),
        )

    # constraints and indexes -----------------------------------------------------------

    def _constraints(self, facts: ColumnFacts) -> Iterator[OnlineStep]:
        n = self.names
        table = n.relation
        statements: list[str] = []
        validate: list[tuple[str, str]] = []
        if facts.not_null:
            check = quote(n.not_null_check)
            statements += [
                f"ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {check}",
                f"ALTER TABLE {table} ADD CONSTRAINT {check} "
                f"CHECK ({quote(n.shadow)} IS NOT NULL) NOT VALID",
            ]
            validate.append((n.not_null_check, f"check that {n.shadow} has no NULL"))
        for constraint in facts.checks:
            temporary = n.temporary(constraint.name)
            statements += [
                f"ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {quote(temporary)}",
                self._check_sql(constraint, temporary),
            ]
            if constraint.validated:
                validate.append((temporary, f"validate {constraint.name} on {n.shadow}"))
        if not statements:
            return
        yield OnlineStep(
            tuple(statements),
            transactional=True,
            purpose=(
                f"add the column's constraints to {n.shadow}, NOT VALID (checked for new writes)"
            ),
        )
        for name, purpose in validate:
            yield OnlineStep(
                (f"ALTER TABLE {table} VALIDATE CONSTRAINT {quote(name)}",),
                transactional=False,
                purpose=purpose + " (SHARE UPDATE EXCLUSIVE: reads and writes continue)",
            )

    def _check_sql(self, constraint: CheckFacts, temporary: str) -> str:
        n = self.names
        statement = _statement(f"ALTER TABLE {n.relation} ADD CONSTRAINT x {constraint.definition}")
        definition = statement.cmds[0].def_
        definition.conname = temporary
        definition.skip_validation = True
        definition.initially_valid = False
        _replace_column(definition.raw_expr, n.table, n.column, (n.shadow,))
        return str(RawStream()(statement))

    def _index_sql(self, index: IndexFacts) -> str:
        n = self.names
        statement = _statement(index.definition)
        statement.idxname = n.temporary(index.name)
        statement.concurrent = True
        statement.if_not_exists = False
        statement.relation = ast.RangeVar(
            schemaname=n.schema, relname=n.table, inh=True, relpersistence="p"
        )
        for part in (statement.indexParams, statement.indexIncludingParams, statement.whereClause):
            if part is not None:
                _replace_column(part, n.table, n.column, (n.shadow,))
        return str(RawStream()(statement))

    # switch ---------------------------------------------------------------------------

    def _switch(self) -> OnlineStep:
        n = self.names
        table = n.relation
        facts = self.facts
        column, shadow = quote(n.column), quote(n.shadow)
        statements = [
            f"DROP TRIGGER {quote(n.trigger)} ON {table}",
            f"DROP FUNCTION {n.qualified(quote(n.function))}()",
            # Drops the old indexes and constraints on the column with it.
            f"ALTER TABLE {table} DROP COLUMN {column}",
            f"ALTER TABLE {table} RENAME COLUMN {shadow} TO {column}",
        ]
        if facts is not None and facts.not_null:
            # No scan: the validated CHECK (… IS NOT NULL) proves it (PostgreSQL 12+).
            if facts.not_null_constraint is not None:
                statements.append(
                    f"ALTER TABLE {table} ADD CONSTRAINT {quote(facts.not_null_constraint)} "
                    f"NOT NULL {column}"
                )
            else:
                statements.append(f"ALTER TABLE {table} ALTER COLUMN {column} SET NOT NULL")
            statements.append(f"ALTER TABLE {table} DROP CONSTRAINT {quote(n.not_null_check)}")
        if facts is not None:
            statements += list(self._renames(facts))
        return OnlineStep(
            tuple(statements),
            transactional=True,
            purpose=(
                f"switch: drop the trigger and the old {n.column}, rename {n.shadow} to "
                f"{n.column}"
                + (
                    " and its indexes and constraints to the old names, set its default"
                    if facts is not None
                    else " (its NOT NULL, default, comment, indexes and constraints are read "
                    "from the database when the deploy plans its steps)"
                )
            ),
        )

    def _renames(self, facts: ColumnFacts) -> Iterator[str]:
        n = self.names
        table = n.relation
        column = quote(n.column)
        for index in facts.indexes:
            yield (
                f"ALTER INDEX {n.qualified(quote(n.temporary(index.name)))} "
                f"RENAME TO {quote(index.name)}"
            )
            if any(n.column in name for name in index.columns):
                yield _index_columns_sql(n.qualified(quote(index.name)), index.columns)
            if index.constraint is not None:
                timing = ""
                if index.deferrable:
                    timing = " DEFERRABLE INITIALLY " + (
                        "DEFERRED" if index.deferred else "IMMEDIATE"
                    )
                yield (
                    f"ALTER TABLE {table} ADD CONSTRAINT {quote(index.constraint)} "
                    f"UNIQUE USING INDEX {quote(index.name)}{timing}"
                )
        for constraint in facts.checks:
            yield (
                f"ALTER TABLE {table} RENAME CONSTRAINT {quote(n.temporary(constraint.name))} "
                f"TO {quote(constraint.name)}"
            )
        if facts.default is not None:
            yield f"ALTER TABLE {table} ALTER COLUMN {column} SET DEFAULT {facts.default}"
        if facts.statistics is not None:
            yield f"ALTER TABLE {table} ALTER COLUMN {column} SET STATISTICS {facts.statistics}"
        # The shadow's comment (its marker) came with it: the column's own, or none.
        comment = _literal(facts.comment) if facts.comment is not None else "NULL"
        yield f"COMMENT ON COLUMN {table}.{column} IS {comment}"
        for index in facts.indexes:
            if index.comment is not None:
                index_name = n.qualified(quote(index.name))
                yield f"COMMENT ON INDEX {index_name} IS {_literal(index.comment)}"
            if index.constraint is not None and index.constraint_comment is not None:
                yield (
                    f"COMMENT ON CONSTRAINT {quote(index.constraint)} ON {table} "
                    f"IS {_literal(index.constraint_comment)}"
                )
        for constraint in facts.checks:
            if constraint.comment is not None:
                yield (
                    f"COMMENT ON CONSTRAINT {quote(constraint.name)} ON {table} "
                    f"IS {_literal(constraint.comment)}"
                )


def _guard_message(names: _Names) -> str:
    return (
        f"{names.relation} already has a column {names.shadow} that is not the online type "
        f"change's: rename or drop it, then run the change of {names.column} again."
    )


def _index_columns_sql(index: str, columns: tuple[str, ...]) -> str:
    """Name the index's own columns as they were (built on the shadow, some are named after
    it: ``qty__sm_new`` for ``qty``, also inside expressions such as ``(qty::text)``).

    What the new index calls them is PostgreSQL's choice (ChooseIndexColumnNames), so the
    names are compared with the catalog when the switch runs; the differing ones go through
    a placeholder first, so that no rename meets a name still in use.
    """
    wanted = ", ".join(f"({i}, {_literal(name)})" for i, name in enumerate(columns, start=1))
    pairs = (
        "SELECT a.attnum, a.attname::text AS current, w.name FROM (VALUES "
        + wanted
        + f") AS w(attnum, name) JOIN pg_attribute a ON a.attrelid = {_literal(index)}::regclass "
        "AND a.attnum = w.attnum WHERE a.attname <> w.name"
    )

    def rename(target: str) -> str:
        return (
            f"EXECUTE 'ALTER TABLE ' || {_literal(index)} || ' RENAME COLUMN ' "
            f"|| quote_ident(safemigrate_column.current) || ' TO ' || quote_ident({target});"
        )

    placeholder = "'safemigrate_' || safemigrate_column.attnum"
    body = (
        "\nDECLARE\n  safemigrate_column record;\nBEGIN\n"
        f"  FOR safemigrate_column IN {pairs} LOOP\n"
        f"    {rename(placeholder)}\n"
        "  END LOOP;\n"
        f"  FOR safemigrate_column IN {pairs} LOOP\n"
        f"    {rename('safemigrate_column.name')}\n"
        "  END LOOP;\nEND\n"
    )
    tag = _dollar_tag(body)
    return f"DO {tag}{body}{tag}"


def _dollar_tag(body: str) -> str:
    tag = "$safemigrate$"
    while tag in body:
        tag = tag[:-1] + "_$"
    return tag
