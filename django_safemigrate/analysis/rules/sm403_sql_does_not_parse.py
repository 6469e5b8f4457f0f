"""SQL that PostgreSQL's parser rejects will fail at deploy.

Every statement a migration runs is parsed with pglast, which is PostgreSQL's
own parser. A statement it rejects is a syntax error on the server too: the
migration fails when it reaches it, in the middle of the deploy, and (in a
non-atomic migration) after the operations before it are already committed.
No other rule can judge a statement that does not parse, so its locks and
risks are unknown as well.

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

from django_safemigrate.analysis.context import StatementContext, UnparsableSQL
from django_safemigrate.analysis.findings import Hit
from django_safemigrate.analysis.registry import Rule
from django_safemigrate.enums import Risk

rule = Rule(code="SM403", name="sql-does-not-parse", severity=Risk.RISKY, doc=__doc__)


@rule.on_statement(UnparsableSQL)
def check(node: UnparsableSQL, ctx: StatementContext) -> Iterator[Hit]:
    if _parses_with_parameters(node.sql, ctx.operation.operation):
        return
    yield Hit(
        message=f"PostgreSQL's parser rejects this statement: {node.error}.",
        hint=(
            "Fix the SQL; as written it fails at deploy. Check it with "
            "'python manage.py sqlmigrate <app> <migration>' and a migrate on a scratch database."
        ),
    )


def _parses_with_parameters(sql: str, operation: Any) -> bool:
    """True when ``sql`` is a ``RunSQL`` item given with parameters, and parses once they are bound.

    The analysis parses the text as written, where ``%s`` / ``%(name)s`` stand for
    values the driver fills in. Bind them the way Python's ``%`` operator does (which
    is also how ``%%`` becomes ``%``), each with a string literal: it is only parsed.
    """
    if not isinstance(operation, RunSQL) or isinstance(operation.sql, str):
        return False
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
            parse_sql(str(text) % values)
        except (ParseError, TypeError, ValueError, KeyError):
            return False
        return True
    return False
