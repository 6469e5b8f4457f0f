"""SQL that PostgreSQL's parser rejects will fail at deploy.

Every statement a migration runs is parsed with pglast, which is PostgreSQL's
own parser. A statement it rejects is a syntax error on the server too: the
migration fails when it reaches it, in the middle of the deploy, and (in a
non-atomic migration) after the operations before it are already committed.
No other rule can judge a statement that does not parse, so its locks and
risks are unknown as well.

Some statements parse and are still rejected before they run, by PostgreSQL's
parse analysis or its rewriter, whatever the database holds: a column one
statement assigns or declares twice (``UPDATE t SET a = 1, a = 2``, also in
``ON CONFLICT DO UPDATE`` and ``MERGE``; ``INSERT INTO t (a, a)``; ``CREATE TABLE
t (a int, a text)``; a view, ``CREATE TABLE … AS`` or ``SELECT … INTO`` whose
columns repeat a name, given or derived from the select list, as in ``CREATE VIEW
v AS SELECT o.id, c.id FROM …``; ``ALTER TABLE t ADD COLUMN a int, ADD COLUMN a
text``). These are reported too, with PostgreSQL's own error. Parts of one column
are not the column twice: ``SET a[1] = 1, a[2] = 2`` and ``SET r.x = 1, r.y = 2``
are fine. Where a view's column names depend on the tables (``SELECT *``), nothing
is guessed.

Safe alternative: fix the SQL, and try the migration against a copy of the
database (``python manage.py sqlmigrate shop 0042`` shows what Django will run;
``python manage.py migrate`` on a scratch database runs it).

Placeholders of ``RunSQL`` parameters (``RunSQL([("UPDATE t SET a = %s", [1])])``)
are filled in before parsing, as the database driver does.

https://docs.djangoproject.com/en/stable/ref/migration-operations/#runsql
https://www.postgresql.org/docs/current/sql-syntax.html
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from django.db.migrations import RunSQL
from pglast import ast

from django_safemigrate.analysis.context import StatementContext, UnparsableSQL
from django_safemigrate.analysis.findings import Hit
from django_safemigrate.analysis.registry import Rule
from django_safemigrate.analysis.rules.sm403_sql_does_not_parse.columns import duplicate_column
from django_safemigrate.enums import Kind, Risk

rule = Rule(
    code="SM403",
    name="sql-does-not-parse",
    severity=Risk.RISKY,
    doc=__doc__,
    kinds=(Kind.OPAQUE,),
)

_TRY_IT = (
    "Check it with 'python manage.py sqlmigrate <app> <migration>' and a migrate on a "
    "scratch database."
)


@rule.on_statement(UnparsableSQL)
def check(node: UnparsableSQL, ctx: StatementContext) -> Iterator[Hit]:
    bound = _parsed_with_parameters(node.sql, ctx.operation.operation)
    if bound is None:
        yield Hit(
            message=f"PostgreSQL's parser rejects this statement: {node.error}.",
            hint=f"Fix the SQL; as written it fails at deploy. {_TRY_IT}",
        )
        return
    for tree in bound:
        yield from check_columns(tree, ctx)


@rule.on_statement(
    ast.UpdateStmt,
    ast.InsertStmt,
    ast.MergeStmt,
    ast.CreateStmt,
    ast.CreateForeignTableStmt,
    ast.ViewStmt,
    ast.CreateTableAsStmt,
    ast.SelectStmt,
    ast.AlterTableStmt,
)
def check_columns(node: Any, ctx: StatementContext) -> Iterator[Hit]:
    error = duplicate_column(node)
    if error is None:
        return
    yield Hit(
        message=f"PostgreSQL rejects this statement before running it: {error}.",
        hint=(
            "Assign or name each column once (two assignments to parts of one column, such "
            "as a[1] and a[2], are fine); as written the statement fails at deploy. "
            f"{_TRY_IT}"
        ),
    )


def _parsed_with_parameters(sql: str, operation: Any) -> list[Any] | None:
    """The statements of ``sql`` when it is a ``RunSQL`` item given with parameters that parses
    once they are bound; ``None`` otherwise.

    The analysis parses the text as written, where ``%s`` / ``%(name)s`` stand for
    values the driver fills in. Bind them the way Python's ``%`` operator does (which
    is also how ``%%`` becomes ``%``), each with a string literal: it is only parsed.
    """
    if not isinstance(operation, RunSQL) or isinstance(operation.sql, str):
        return None
    from pglast import parse_sql
    from pglast.parser import ParseError

    for item in operation.sql or ():
        if not isinstance(item, list | tuple) or len(item) != 2:
            continue
        text, params = item
        if params is None or str(text).strip() != sql:
            continue
        values: Any
        if isinstance(params, Mapping):
            values = dict.fromkeys(params, "'0'")
        else:
            values = tuple("'0'" for _ in params)
        try:
            return [raw.stmt for raw in parse_sql(str(text) % values)]
        except (ParseError, TypeError, ValueError, KeyError):
            return None
    return None
