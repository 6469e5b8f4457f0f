"""The online rewrite: each risky statement on an existing table becomes its online form.

This is the pipeline's stage between rendering and analysis. It reads the statements the
configured schema editor emitted for a migration (never what an author wrote in
``RunSQL``: that runs as written) and, for a table that exists before the migration,
replaces the ones that would hold a strong lock for a time that grows with the table:

============================================  ==============================================
emitted                                        online form (each line one step)
============================================  ==============================================
``CREATE [UNIQUE] INDEX``                      ``CREATE [UNIQUE] INDEX CONCURRENTLY`` (alone)
``DROP INDEX``                                 ``DROP INDEX CONCURRENTLY`` (alone)
``ADD CONSTRAINT … UNIQUE (cols)``             ``CREATE UNIQUE INDEX CONCURRENTLY`` (alone);
                                               ``ADD CONSTRAINT … UNIQUE USING INDEX``
``ADD CONSTRAINT … CHECK`` / ``FOREIGN KEY``   ``… NOT VALID``; ``VALIDATE CONSTRAINT``
``ADD COLUMN … REFERENCES`` (inline FK)        ``ADD COLUMN``; ``ADD CONSTRAINT … NOT VALID``;
                                               ``VALIDATE CONSTRAINT``
``ADD COLUMN … UNIQUE`` (inline)               ``ADD COLUMN``; the unique index and
                                               constraint as above
``ALTER COLUMN … SET NOT NULL``                ``CHECK (col IS NOT NULL) NOT VALID``;
                                               ``VALIDATE``; ``SET NOT NULL`` (PostgreSQL 12+
                                               skips the scan) and drop the check
``ADD COLUMN … DEFAULT v NOT NULL`` then       the ``DROP DEFAULT`` is left out: the running
``ALTER COLUMN … DROP DEFAULT``                code, which does not know the column, can
                                               still insert
``ALTER COLUMN … TYPE`` that rewrites          expand / backfill / switch
                                               (:mod:`django_safemigrate.online.typechange`)
============================================  ==============================================

A ``VALIDATE CONSTRAINT`` takes ``SHARE UPDATE EXCLUSIVE``, which lets reads and writes
through while it scans; it runs in a transaction of its own, after the short one that
added the constraint has committed and released its strong lock.

Tables created earlier in the same migration keep the plain form: nothing uses them yet.
A statement with no online form that is safe here is a :class:`NotOnline`: the analysis
reports it with the reason and the gate asks for a review before it runs as it is.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
from collections.abc import Callable, Sequence
from typing import Any

from pglast import ast
from pglast.enums import AlterTableType, ConstrType, ObjectType, SortByDir, SortByNulls
from pglast.stream import RawStream

from django_safemigrate.exceptions import SafemigrateError
from django_safemigrate.online.forms import PAUSE, NotOnline, OnlineForm, OnlineStep
from django_safemigrate.sql import OperationSQL, Statement, parse

#: One element of an operation's online plan: a statement that runs as emitted, or the
#: online form (or the refusal) that replaces it.
Unit = Statement | OnlineForm | NotOnline

#: PostgreSQL's limit on identifier length, in bytes.
_NAME_MAX = 63

#: What reads the facts about a column whose type change rewrites the table
#: (``None`` when there is no database to read them from).
FactsReader = Callable[[str, str | None, str], Any]


class OnlinePlanError(SafemigrateError):
    """The runner could not plan an online form from the catalogs (nothing ran)."""


#: What a catalog read returns when it failed (a lock timeout, a lost connection).
UNREADABLE: Any = type("Unreadable", (), {"__repr__": lambda self: "UNREADABLE"})()


@dataclasses.dataclass(frozen=True)
class OnlineOperation:
    """What one operation runs once rewritten, in order."""

    index: int
    units: tuple[Unit, ...]

    @property
    def forms(self) -> tuple[OnlineForm, ...]:
        return tuple(u for u in self.units if isinstance(u, OnlineForm))

    @property
    def refusals(self) -> tuple[NotOnline, ...]:
        return tuple(u for u in self.units if isinstance(u, NotOnline))


@dataclasses.dataclass
class RewriteContext:
    pg_version: int
    #: Tables created earlier in the migration (plain forms for them).
    created: set[str] = dataclasses.field(default_factory=set)
    #: Reads a column's catalog facts for a type change; ``None`` offline.
    facts: FactsReader | None = None
    #: The column's type before the operation, from the project state (``None``: unknown).
    old_type: Callable[[str, str], Any] | None = None
    #: Whether the sessions run in UTC (a ``timestamp`` ↔ ``timestamptz`` change keeps the rows).
    utc: bool = True
    #: The connection the fields' column types are read for (``None``: types unknown).
    connection: Any = None
    #: Why the project state alone rules out an online type change of (table, column):
    #: a key the shadow column would leave behind (what the catalogs say decides when
    #: there is a database; without one, the models do).
    state_blocker: Callable[[str, str], str | None] | None = None
    #: The runner plans what it runs: a catalog it cannot read stops the run instead of
    #: being guessed around (the analysis reports it as having no online form).
    strict: bool = False
    #: (table, column) added by earlier statements of the migration.
    added_columns: set[tuple[str, str]] = dataclasses.field(default_factory=set)
    #: The primary key (column, database type) of a table before the operation.
    primary_key: Callable[[str], tuple[str, str] | None] | None = None
    #: (table, column) a ``CHECK (column IS NOT NULL)`` was added for by the backend.
    proven_not_null: set[tuple[str | None, str]] = dataclasses.field(default_factory=set)


def rewrite_migration(
    operations: Sequence[OperationSQL], ctx: RewriteContext
) -> dict[int, OnlineOperation]:
    """The online plan of every operation that has one (by operation index).

    Operations not in the result run as rendered: nothing of theirs needed an online
    form (or they are ``RunSQL``/``RunPython``, or their SQL is not all they run).
    """
    result: dict[int, OnlineOperation] = {}
    for op in operations:
        if not op.reduces_to_sql or op.render_error or op.refused:
            continue
        ctx.old_type = _old_types(op, ctx.connection)
        ctx.primary_key = _primary_keys(op, ctx.connection)
        ctx.state_blocker = _state_blockers(op)
        units = _rewrite_operation(op, ctx)
        if units is not None:
            result[op.index] = OnlineOperation(op.index, units)
    return result


def _old_types(op: OperationSQL, connection: Any) -> Callable[[str, str], Any] | None:
    """Reads a column's type before ``op`` from the project state, parsed like SM107 does."""
    if op.from_state is None or connection is None:
        return None

    def read(table: str, column: str) -> Any:
        from django_safemigrate.analysis.rules import sm107_column_type_change_rewrites as sm107

        model = _model_of(op, table)
        field = _field(model, column) if model is not None else None
        if field is None:
            return None
        params = field.db_parameters(connection=connection)
        collation = params.get("collation") or getattr(field, "db_collation", None)
        text = params.get("type")
        return sm107.parse_type(str(text), collation) if text else None

    return read


def _field(model: Any, column: str) -> Any:
    return next((f for f in model._meta.concrete_fields if f.column == column), None)


def _model_of(op: OperationSQL, table: str) -> Any:
    state = op.from_state
    if state is None:
        return None
    try:
        rendered = state.apps.get_models()
    except Exception:  # a state that does not render: nothing known
        return None
    return next((m for m in rendered if m._meta.db_table == table), None)


def _state_blockers(op: OperationSQL) -> Callable[[str, str], str | None] | None:
    """Reads from the project state before ``op`` what keeps a column from its online type
    change: it is (part of) the primary key, has a foreign key, or one points to it."""
    if op.from_state is None:
        return None

    def read(table: str, column: str) -> str | None:
        model = _model_of(op, table)
        if model is None:
            return None
        field = _field(model, column)
        if field is None:
            return None
        if field.primary_key:
            return f"{column} is the primary key of {table}, which the online form does not rebuild"
        if field.is_relation and field.many_to_one:
            return f"{column} has a foreign key, which the online form does not carry over"
        try:
            rendered = op.from_state.apps.get_models()  # type: ignore[union-attr]
        except Exception:  # a state that does not render: nothing more known
            return None
        for other in rendered:
            for related in other._meta.concrete_fields:
                remote = getattr(related, "remote_field", None)
                if not related.is_relation or remote is None or not related.many_to_one:
                    continue
                target = remote.model
                if getattr(target, "_meta", None) is None or target._meta.db_table != table:
                    continue
                if getattr(remote, "get_related_field", None) and (
                    remote.get_related_field().column == column
                ):
                    return (
                        f"{column} is referenced by the foreign key {other._meta.db_table}."
                        f"{related.column}; change both columns together in a maintenance "
                        "window"
                    )
        return None

    return read


def _primary_keys(op: OperationSQL, connection: Any) -> Callable[[str], Any] | None:
    """Reads a table's primary key (column, type) from the project state before ``op``."""
    if op.from_state is None or connection is None:
        return None

    def read(table: str) -> tuple[str, str] | None:
        model = _model_of(op, table)
        pk = model._meta.pk if model is not None else None
        if pk is None:
            return None
        db_type = pk.rel_db_type(connection=connection)
        return (str(pk.column), str(db_type)) if db_type else None

    return read


def _rewrite_operation(op: OperationSQL, ctx: RewriteContext) -> tuple[Unit, ...] | None:
    units: list[Unit] = []
    changed = False
    statements = list(op.statements)
    skip: set[int] = set()
    for position, statement in enumerate(statements):
        if position in skip:
            continue
        node = statement.tree
        if statement.handwritten or node is None:
            units.append(statement)
            continue
        if isinstance(node, ast.CreateStmt):
            name = _relation(node.relation)
            if name:
                ctx.created.add(name)
            units.append(statement)
            continue
        rewritten = _rewrite_statement(statement, node, ctx, statements[position + 1 :])
        if rewritten is None:
            units.append(statement)
            continue
        new_units, consumed = rewritten
        skip.update(position + 1 + i for i in consumed)
        units.extend(new_units)
        changed = True
    return tuple(_check_before_fill(units)) if changed else None


def _rewrite_statement(
    statement: Statement, node: Any, ctx: RewriteContext, following: Sequence[Statement]
) -> tuple[list[Unit], set[int]] | None:
    """The units replacing ``statement``, and which ``following`` statements they absorb."""
    if isinstance(node, ast.IndexStmt):
        table = _relation(node.relation)
        if node.concurrent or table is None or table in ctx.created:
            return None
        return [_index_form(statement, node)], set()
    if isinstance(node, ast.DropStmt):
        return _drop_index(statement, node, ctx)
    if isinstance(node, ast.UpdateStmt):
        return _fill_nulls(statement, node, ctx)
    if isinstance(node, ast.AlterTableStmt) and node.objtype == ObjectType.OBJECT_TABLE:
        table = _relation(node.relation)
        if table is None or table in ctx.created or not node.cmds:
            return None
        return _alter_table(statement, node, ctx, following)
    return None


# -- filling NULLs before NOT NULL --------------------------------------------------------


#: Rows per batch of a backfill (one short transaction each).
BATCH_ROWS = 2000


def _fill_nulls(
    statement: Statement, node: ast.UpdateStmt, ctx: RewriteContext
) -> tuple[list[Unit], set[int]] | None:
    """Django's ``UPDATE t SET col = <default> WHERE col IS NULL`` (an ``AlterField`` to
    NOT NULL with a default) in keyset batches by primary key, each batch committed."""
    table = _relation(node.relation)
    where = node.whereClause
    if (
        table is None
        or table in ctx.created
        or node.fromClause
        or getattr(node, "returningClause", None)
        or getattr(node, "returningList", None)
        or not node.targetList
        or len(node.targetList) != 1
        or not isinstance(where, ast.NullTest)
        or where.nulltesttype != 0  # IS_NULL
        or not isinstance(where.arg, ast.ColumnRef)
    ):
        return None
    target = node.targetList[0]
    column = _column_ref_name(where.arg)
    if target.name != column or target.indirection:
        return None
    key = ctx.primary_key(table) if ctx.primary_key is not None else None
    if key is None:
        return None
    body = fill_nulls_block(
        _sql(node.relation), _quote(column), _sql(target.val), _quote(key[0]), key[1]
    )
    return [
        OnlineForm(
            statement,
            (
                OnlineStep(
                    (body,),
                    False,
                    f"fill the NULLs of {column} in batches of {BATCH_ROWS} rows by primary "
                    "key, each batch its own transaction, pausing as long as it took",
                ),
            ),
            frozenset({"SM207"}),
            note="",
        )
    ], set()


def fill_nulls_block(table: str, column: str, value: str, key: str, key_type: str) -> str:
    """A ``DO`` block setting ``column`` to ``value`` where it is NULL, batch after batch.

    Each batch is the next ``BATCH_ROWS`` keys (a keyset walk, so the whole table is
    read once), committed on its own: row locks last one batch. Run again after an
    interruption it walks the table again and only writes the rows still NULL.
    """
    batch = (
        "SELECT max(k) INTO upper_key FROM (SELECT {key} AS k FROM {table}{after} "
        f"ORDER BY {{key}} LIMIT {BATCH_ROWS}) AS batch;"
    )
    first = batch.format(key=key, table=table, after="")
    later = batch.format(key=key, table=table, after=f" WHERE {key} > last_key")
    return (
        "DO $safemigrate$\n"
        "DECLARE\n"
        f"    last_key {key_type};\n"
        f"    upper_key {key_type};\n"
        "    safemigrate_batch_began timestamptz;\n"
        "BEGIN\n"
        "    LOOP\n"
        "        safemigrate_batch_began := clock_timestamp();\n"
        "        IF last_key IS NULL THEN\n"
        f"            {first}\n"
        f"            UPDATE {table} SET {column} = {value} "
        f"WHERE {key} <= upper_key AND {column} IS NULL;\n"
        "        ELSE\n"
        f"            {later}\n"
        f"            UPDATE {table} SET {column} = {value} "
        f"WHERE {key} > last_key AND {key} <= upper_key AND {column} IS NULL;\n"
        "        END IF;\n"
        "        EXIT WHEN upper_key IS NULL;\n"
        "        last_key := upper_key;\n"
        "        COMMIT;\n"
        f"        {PAUSE}\n"
        "    END LOOP;\n"
        "END\n"
        "$safemigrate$"
    )


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _check_before_fill(units: list[Unit]) -> list[Unit]:
    """Add the NOT NULL form's ``CHECK … NOT VALID`` before the batches that fill the
    NULLs of the same column: from then on no new NULL can appear behind them, so the
    validation that follows finds none."""
    result = list(units)
    fills = [u for u in units if isinstance(u, OnlineForm) and "SM207" in u.resolves and u.steps]
    for fill in fills:
        node: Any = fill.original.tree
        column = _column_ref_name(node.whereClause.arg)
        table = _relation(node.relation)
        position = result.index(fill)
        for j in range(position + 1, len(result)):
            later = result[j]
            if (
                isinstance(later, OnlineForm)
                and "SM106" in later.resolves
                and len(later.steps) > 1
                and _sets_not_null_on(later.original, table, column)
            ):
                result[j] = dataclasses.replace(later, steps=later.steps[1:])
                result.insert(
                    position,
                    dataclasses.replace(later, steps=later.steps[:1], resolves=frozenset()),
                )
                break
    return result


def _sets_not_null_on(statement: Statement, table: str | None, column: str) -> bool:
    node = statement.tree
    if not isinstance(node, ast.AlterTableStmt) or _relation(node.relation) != table:
        return False
    return any(
        c.subtype == AlterTableType.AT_SetNotNull and c.name == column for c in node.cmds or ()
    )


# -- indexes ----------------------------------------------------------------------------------


def _index_form(statement: Statement, node: ast.IndexStmt) -> OnlineForm:
    built = copy.deepcopy(node)
    built.concurrent = True
    what = "unique index" if node.unique else "index"
    return OnlineForm(
        statement,
        (OnlineStep((_sql(built),), False, f"build the {what} {node.idxname} concurrently"),),
        frozenset({"SM101", "SM103"}),
    )


def _drop_index(
    statement: Statement, node: ast.DropStmt, ctx: RewriteContext
) -> tuple[list[Unit], set[int]] | None:
    if node.removeType != ObjectType.OBJECT_INDEX or node.concurrent:
        return None
    if not node.objects or len(node.objects) != 1:
        return None  # CONCURRENTLY drops one index at a time
    dropped = copy.deepcopy(node)
    dropped.concurrent = True
    names = [getattr(part, "sval", "") for part in node.objects[0]]
    return [
        OnlineForm(
            statement,
            (OnlineStep((_sql(dropped),), False, f"drop the index {names[-1]} concurrently"),),
            frozenset({"SM102"}),
        )
    ], set()


# -- ALTER TABLE ------------------------------------------------------------------------------


def _alter_table(
    statement: Statement,
    node: ast.AlterTableStmt,
    ctx: RewriteContext,
    following: Sequence[Statement],
) -> tuple[list[Unit], set[int]] | None:
    """Rewrite each command that has an online form; the others run as they are.

    A statement with several commands is split into one statement per command, in order
    (Django combines a type change with its default, for example).
    """
    units: list[Unit] = []
    consumed: set[int] = set()
    changed = False
    cmds = tuple(node.cmds or ())
    many = len(cmds) > 1
    for cmd in cmds:
        own = _parsed(_alter(node.relation, cmd)) if many else statement
        replaced = _alter_command(own, node, cmd, ctx, following, consumed)
        if replaced is None:
            units.append(own)
        else:
            units.extend(
                dataclasses.replace(u, source=statement)
                if isinstance(u, OnlineForm) and many and u.original is own
                else u
                for u in replaced
            )
            changed = True
    if not changed:
        return None
    return units, consumed


def _alter_command(  # noqa: PLR0917 - one command of the statement, with its context
    statement: Statement,
    node: ast.AlterTableStmt,
    cmd: ast.AlterTableCmd,
    ctx: RewriteContext,
    following: Sequence[Statement],
    consumed: set[int],
) -> list[Unit] | None:
    table = node.relation
    subtype = cmd.subtype
    if subtype == AlterTableType.AT_AddConstraint and isinstance(cmd.def_, ast.Constraint):
        proven = _not_null_check_column(cmd.def_)
        if proven is not None:
            ctx.proven_not_null.add((_relation(table), proven))
        return _add_constraint(statement, table, cmd.def_)
    if subtype == AlterTableType.AT_SetNotNull and cmd.name:
        if ctx.pg_version < 12:
            return None  # no scan-free SET NOT NULL before PostgreSQL 12
        if (_relation(table), cmd.name) in ctx.proven_not_null:
            return None  # the backend proved it with a check first (zero-downtime backend)
        return [_set_not_null(statement, table, cmd.name)]
    if subtype == AlterTableType.AT_AddColumn and isinstance(cmd.def_, ast.ColumnDef):
        ctx.added_columns.add((_relation(table) or "", str(cmd.def_.colname)))
        return _add_column(statement, node, cmd.def_, following, consumed)
    if subtype == AlterTableType.AT_AlterColumnType and cmd.name:
        return _type_change(statement, table, cmd, ctx)
    return None


def _not_null_check_column(constraint: ast.Constraint) -> str | None:
    """The column of a ``CHECK (column IS NOT NULL)``, else ``None``."""
    expr = constraint.raw_expr
    if constraint.contype != ConstrType.CONSTR_CHECK or not isinstance(expr, ast.NullTest):
        return None
    if expr.nulltesttype != 1 or not isinstance(expr.arg, ast.ColumnRef):  # IS_NOT_NULL
        return None
    fields = expr.arg.fields or ()
    last = fields[-1] if fields else None
    return str(last.sval) if isinstance(last, ast.String) else None


def _add_constraint(
    statement: Statement, table: Any, constraint: ast.Constraint
) -> list[Unit] | None:
    kind = constraint.contype
    if not constraint.conname:
        return None  # Django names every constraint it adds
    if kind in (ConstrType.CONSTR_CHECK, ConstrType.CONSTR_FOREIGN):
        if constraint.skip_validation:
            return None  # already NOT VALID: the author validates it when they choose
        return [_not_valid_then_validate(statement, table, constraint)]
    if kind == ConstrType.CONSTR_UNIQUE and constraint.keys and not constraint.indexname:
        return [_unique_form(statement, table, constraint)]
    return None


def _not_valid_then_validate(
    statement: Statement, table: Any, constraint: ast.Constraint
) -> OnlineForm:
    added = copy.deepcopy(constraint)
    added.skip_validation = True
    added.initially_valid = False
    name = str(constraint.conname)
    foreign = constraint.contype == ConstrType.CONSTR_FOREIGN
    what = "foreign key" if foreign else "check constraint"
    return OnlineForm(
        statement,
        (
            OnlineStep(
                (_alter(table, _add_cmd(added)),),
                True,
                f"add the {what} {name} NOT VALID (new rows are checked from here)",
            ),
            OnlineStep(
                (_validate(table, name),),
                True,
                f"validate {name} (scans the existing rows under SHARE UPDATE EXCLUSIVE, "
                "which lets reads and writes through)",
            ),
        ),
        frozenset({"SM105"} if foreign else {"SM104"}),
    )


def _unique_form(statement: Statement, table: Any, constraint: ast.Constraint) -> OnlineForm:
    name = str(constraint.conname)
    index = ast.IndexStmt(
        idxname=name,
        relation=copy.deepcopy(table),
        accessMethod="btree",
        indexParams=tuple(_index_elem(key.sval) for key in constraint.keys or ()),
        indexIncludingParams=tuple(_index_elem(key.sval) for key in constraint.including or ())
        or None,
        unique=True,
        nulls_not_distinct=bool(constraint.nulls_not_distinct),
        concurrent=True,
    )
    attach = ast.Constraint(
        contype=ConstrType.CONSTR_UNIQUE,
        conname=name,
        indexname=name,
        deferrable=bool(constraint.deferrable),
        initdeferred=bool(constraint.initdeferred),
    )
    return OnlineForm(
        statement,
        (
            OnlineStep((_sql(index),), False, f"build the unique index {name} concurrently"),
            OnlineStep(
                (_alter(table, _add_cmd(attach)),),
                True,
                f"make it the unique constraint {name} (USING INDEX: no scan)",
            ),
        ),
        frozenset({"SM103"}),
    )


def _index_elem(name: str) -> ast.IndexElem:
    return ast.IndexElem(
        name=name,
        ordering=SortByDir.SORTBY_DEFAULT,
        nulls_ordering=SortByNulls.SORTBY_NULLS_DEFAULT,
    )


def _set_not_null(statement: Statement, table: Any, column: str) -> OnlineForm:
    check = not_null_check_name(_relation(table) or "", column)
    condition = ast.NullTest(
        arg=ast.ColumnRef(fields=(ast.String(sval=column),)),
        nulltesttype=1,  # IS_NOT_NULL
    )
    added = ast.Constraint(
        contype=ConstrType.CONSTR_CHECK,
        conname=check,
        raw_expr=condition,
        is_enforced=True,
        skip_validation=True,
        initially_valid=False,
    )
    set_not_null = ast.AlterTableCmd(subtype=AlterTableType.AT_SetNotNull, name=column)
    drop = ast.AlterTableCmd(
        subtype=AlterTableType.AT_DropConstraint, name=check, behavior=0, missing_ok=True
    )
    return OnlineForm(
        statement,
        (
            OnlineStep(
                (_alter(table, _add_cmd(added)),),
                True,
                f"add CHECK ({column} IS NOT NULL) NOT VALID (new rows are checked from here)",
            ),
            OnlineStep(
                (_validate(table, check),),
                True,
                f"validate {check} (scans under SHARE UPDATE EXCLUSIVE)",
            ),
            OnlineStep(
                (_alter(table, set_not_null), _alter(table, drop)),
                True,
                f"SET NOT NULL without a scan (the validated check proves it), drop {check}",
            ),
        ),
        frozenset({"SM106"}),
    )


def _add_column(
    statement: Statement,
    node: ast.AlterTableStmt,
    column: ast.ColumnDef,
    following: Sequence[Statement],
    consumed: set[int],
) -> list[Unit] | None:
    table = node.relation
    constraints = list(column.constraints or ())
    foreign = [c for c in constraints if c.contype == ConstrType.CONSTR_FOREIGN and c.conname]
    unique = [c for c in constraints if c.contype == ConstrType.CONSTR_UNIQUE]
    units: list[Unit] = []
    extra: list[OnlineForm] = []
    if foreign or unique:
        kept, deferrable = _without(constraints, {id(c) for c in foreign + unique})
        plain = copy.deepcopy(column)
        plain.constraints = tuple(kept) or None
        add = ast.AlterTableCmd(subtype=AlterTableType.AT_AddColumn, def_=plain)
        add_sql = _alter(table, add)
        units.append(
            OnlineForm(
                statement,
                (OnlineStep((add_sql,), True, f"add the column {column.colname}"),),
                frozenset(),
                "its constraints are added online in the steps that follow",
            )
        )
        for fk in foreign:
            named = copy.deepcopy(fk)
            named.fk_attrs = (ast.String(sval=column.colname),)
            named.deferrable, named.initdeferred = deferrable.get(id(fk), (False, False))
            extra.append(_not_valid_then_validate(statement, table, named))
            for i, later in enumerate(following):
                if _sets_constraint_immediate(later, fk.conname):
                    consumed.add(i)
        for constraint in unique:
            named = copy.deepcopy(constraint)
            named.conname = named.conname or _unique_name(
                _relation(table) or "", str(column.colname)
            )
            named.keys = (ast.String(sval=column.colname),)
            extra.append(_unique_form(statement, table, named))
        units.extend(extra)
    default = _drops_default_next(column, following)
    if default is not None:
        consumed.add(default)
        drop = following[default]
        units.append(
            OnlineForm(
                drop,
                (),
                frozenset({"SM205"}),
                f"the database default of {column.colname} stays, so that the running code, "
                "which does not know the column, can still insert; drop it in a post-deploy "
                "migration once no old code runs",
            )
        )
    if not units:
        return None
    if not (foreign or unique):
        units.insert(0, statement)
    return units


def _without(
    constraints: list[Any], removed: set[int]
) -> tuple[list[Any], dict[int, tuple[bool, bool]]]:
    """``constraints`` without ``removed`` and the attribute nodes (``DEFERRABLE``,
    ``INITIALLY DEFERRED``) that follow them; what those said, by removed constraint."""
    kept: list[Any] = []
    attributes: dict[int, tuple[bool, bool]] = {}
    owner: int | None = None
    for constraint in constraints:
        kind = constraint.contype
        if kind in _ATTRIBUTES:
            if owner is not None:
                deferrable, deferred = attributes.get(owner, (False, False))
                if kind == ConstrType.CONSTR_ATTR_DEFERRABLE:
                    deferrable = True
                elif kind == ConstrType.CONSTR_ATTR_DEFERRED:
                    deferred = True
                elif kind == ConstrType.CONSTR_ATTR_NOT_DEFERRABLE:
                    deferrable = False
                else:
                    deferred = False
                attributes[owner] = (deferrable, deferred)
                continue
            kept.append(constraint)
            continue
        owner = id(constraint) if id(constraint) in removed else None
        if owner is None:
            kept.append(constraint)
    return kept, attributes


_ATTRIBUTES = {
    ConstrType.CONSTR_ATTR_DEFERRABLE,
    ConstrType.CONSTR_ATTR_NOT_DEFERRABLE,
    ConstrType.CONSTR_ATTR_DEFERRED,
    ConstrType.CONSTR_ATTR_IMMEDIATE,
}


def _drops_default_next(column: ast.ColumnDef, following: Sequence[Statement]) -> int | None:
    """The position in ``following`` of Django's ``ALTER COLUMN … DROP DEFAULT`` for a NOT
    NULL column just added with a constant default, if there is one."""
    constraints = list(column.constraints or ())
    kinds = {c.contype for c in constraints}
    if ConstrType.CONSTR_NOTNULL not in kinds or ConstrType.CONSTR_DEFAULT not in kinds:
        return None
    default = next(c for c in constraints if c.contype == ConstrType.CONSTR_DEFAULT)
    if not isinstance(default.raw_expr, ast.A_Const | ast.TypeCast):
        return None
    for i, later in enumerate(following):
        node = later.tree
        if not isinstance(node, ast.AlterTableStmt) or not node.cmds or len(node.cmds) != 1:
            continue
        cmd = node.cmds[0]
        if (
            cmd.subtype == AlterTableType.AT_ColumnDefault
            and cmd.name == column.colname
            and cmd.def_ is None
        ):
            return i
    return None


def _sets_constraint_immediate(statement: Statement, name: str) -> bool:
    """Django's ``SET CONSTRAINTS "<fk>" IMMEDIATE`` after an inline foreign key."""
    node = statement.tree
    if not isinstance(node, ast.ConstraintsSetStmt) or node.deferred:
        return False
    return any(_relation(c) == name for c in node.constraints or ())


def _column_ref_name(ref: ast.ColumnRef) -> str:
    return ".".join(getattr(f, "sval", "") for f in ref.fields or ())


def _type_change(
    statement: Statement, table: Any, cmd: ast.AlterTableCmd, ctx: RewriteContext
) -> list[Unit] | None:
    """A type change that rewrites the table: expand / backfill / switch, or a refusal."""
    from django_safemigrate.analysis.rules import sm107_column_type_change_rewrites as sm107
    from django_safemigrate.online import typechange

    definition = cmd.def_
    name = _relation(table)
    if not isinstance(definition, ast.ColumnDef) or definition.typeName is None or not name:
        return None
    column = str(cmd.name)
    new = sm107.column_type(definition.typeName, sm107._collation(definition.collClause))
    using = definition.raw_default
    if using is not None and sm107._is_plain_using(using, column, new):
        using = None
    old = ctx.old_type(name, column) if ctx.old_type is not None else None
    change = sm107.TypeChange(name, column, new, old, using, None)
    if sm107.verdict(change, pg_version=ctx.pg_version, utc=ctx.utc) is not sm107.Verdict.REWRITE:
        return None
    schema = getattr(table, "schemaname", None) or None
    if (name, column) in ctx.added_columns:
        return [
            NotOnline(
                statement,
                f"{column} is added earlier in the same migration, so its type change cannot "
                "be planned from the catalogs; give it its final type in the AddField",
            )
        ]
    facts = ctx.facts(name, schema, column) if ctx.facts is not None else None
    if facts is UNREADABLE:
        reason = (
            f"the catalogs of {name}.{column} could not be read to plan its online form "
            "(a lock timeout on the catalogs, or a lost connection)"
        )
        if ctx.strict:
            raise OnlinePlanError(
                f"Planning the steps of a type change: {reason}. Nothing of this migration "
                "ran; run safemigrate again."
            )
        return [NotOnline(statement, reason)]
    if facts is None and ctx.facts is not None and ctx.strict:
        raise OnlinePlanError(
            f"Planning the steps of a type change: {name}.{column} is not in the catalogs. "
            "Nothing of this migration ran."
        )
    if facts is None and ctx.state_blocker is not None:
        # No catalogs to read (offline, or the table is not there yet): the models tell
        # the keys, so that an offline judgement reaches the same verdict as a live one.
        blocker = ctx.state_blocker(name, column)
        if blocker is not None:
            return [NotOnline(statement, blocker)]
    form = typechange.type_change_form(
        statement,
        table=name,
        column=column,
        new_type=_sql(definition.typeName),
        using=_sql(using) if using is not None else None,
        facts=facts,
        pg_version=ctx.pg_version,
    )
    return [form]


# -- building statements ----------------------------------------------------------------------


def _relation(relation: Any) -> str | None:
    if relation is None or not getattr(relation, "relname", None):
        return None
    return str(relation.relname)


def _sql(node: Any) -> str:
    return str(RawStream()(node))


def _parsed(sql: str) -> Statement:
    return parse(sql)[0]


def _alter(relation: Any, *cmds: Any) -> str:
    return _sql(
        ast.AlterTableStmt(
            relation=copy.deepcopy(relation),
            cmds=tuple(copy.deepcopy(c) for c in cmds),
            objtype=ObjectType.OBJECT_TABLE,
        )
    )


def _add_cmd(constraint: ast.Constraint) -> ast.AlterTableCmd:
    return ast.AlterTableCmd(subtype=AlterTableType.AT_AddConstraint, def_=constraint)


def _validate(relation: Any, name: str) -> str:
    return _alter(
        relation, ast.AlterTableCmd(subtype=AlterTableType.AT_ValidateConstraint, name=name)
    )


def _short_name(base: str, suffix: str) -> str:
    """``base`` + ``suffix``, shortened with a hash to PostgreSQL's 63 bytes."""
    name = f"{base}{suffix}"
    if len(name.encode()) <= _NAME_MAX:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    room = _NAME_MAX - len(suffix.encode()) - len(digest) - 1
    head = base.encode()[:room].decode(errors="ignore")
    return f"{head}_{digest}{suffix}"


def not_null_check_name(table: str, column: str) -> str:
    """The temporary check of a ``SET NOT NULL`` done online (deterministic)."""
    return _short_name(f"{table}_{column}", "_sm_notnull")


def _unique_name(table: str, column: str) -> str:
    """The name PostgreSQL gives an inline ``UNIQUE`` (``<table>_<column>_key``), shortened
    like PostgreSQL shortens it (the longer part loses a character at a time)."""
    first, second, label = table.encode(), column.encode(), b"key"
    while len(first) + len(second) + len(label) + 2 > _NAME_MAX:
        if len(first) >= len(second):
            first = first[:-1]
        else:
            second = second[:-1]
    return f"{first.decode(errors='ignore')}_{second.decode(errors='ignore')}_key"


def catalog_facts(catalog: Any) -> FactsReader | None:
    """Reads a column's facts through the rendering's read-only catalog channel
    (:class:`django_safemigrate.analysis.catalog.Catalog`); ``None`` without a database."""
    if catalog is None or not catalog.live:
        return None

    def read(table: str, schema: str | None, column: str) -> Any:
        from django_safemigrate.online import typechange

        return catalog.read(
            ("column_facts", schema, table, column),
            lambda cursor: typechange.column_facts(cursor, table, column, schema),
            UNREADABLE,
        )

    return read
