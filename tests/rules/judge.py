"""Run one migration's operations through the analysis, against the test database.

``judge(operations, setup=[...])`` renders the SQL the configured backend emits
for ``operations`` after ``setup`` built the project state, and returns the
findings. Rule tests assert with ``flags`` / ``leaves_alone``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import connection as default_connection
from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.migrations import Migration
from django.db.migrations.state import ProjectState
from django.db.utils import load_backend

from django_safemigrate.analysis.analyzer import AnalysisOptions, analyse_migration
from django_safemigrate.analysis.database import offline_connection
from django_safemigrate.analysis.findings import Finding, MigrationReport, TableInfo

APP = "testapp"
ZERO_DOWNTIME = "django_zero_downtime_migrations.backends.postgres"


def backend_connection(engine: str | None = None) -> BaseDatabaseWrapper:
    """The test connection, or a copy of it using another backend ``engine``."""
    if engine is None:
        return default_connection
    settings = {**connections["default"].settings_dict, "ENGINE": engine}
    wrapper: BaseDatabaseWrapper = load_backend(engine).DatabaseWrapper(settings, "default")
    return wrapper


def judge(operations: Sequence[Any], **kwargs: Any) -> list[Finding]:
    """Findings for a migration ``0002`` of app ``testapp`` made of ``operations``."""
    return list(judge_report(operations, **kwargs).findings)


def judge_report(
    operations: Sequence[Any],
    *,
    setup: Sequence[Any] = (),
    setup_app: str = APP,
    atomic: bool = True,
    pg_version: int = 15,
    engine: str | None = None,
    tables: dict[str, int] | None = None,
    attrs: dict[str, Any] | None = None,
    facts: dict[str, Any] | None = None,
    infer_phase: bool = True,
    offline: bool = False,
    online: bool = False,
) -> MigrationReport:
    """The report on a migration ``0002`` of app ``testapp`` made of ``operations``.

    ``tables`` maps table names to estimated row counts, as if a live database
    with those tables (and no others) were consulted. ``facts`` carries what rules
    learnt from earlier migrations, as a walk over several migrations shares it.
    ``offline`` renders without a connection, as ``checkmigrations --offline`` does.
    ``online`` judges what ``safemigrate`` runs with online execution on.
    ``setup_app`` is the app whose migration ``setup`` is (another app's models).
    """
    state = ProjectState()
    if setup:
        setup_migration = type("Migration", (Migration,), {"operations": list(setup)})
        first = setup_migration("0001_setup", setup_app)
        state = first.mutate_state(state, preserve=False)
    body = {"operations": list(operations), "atomic": atomic, **(attrs or {})}
    migration = type("Migration", (Migration,), body)("0002_change", APP)
    live = tables is not None

    def table_info(name: str) -> TableInfo | None:
        if tables is None or name not in tables:
            return None
        return TableInfo(name, tables[name], tables[name] * 100)

    options = AnalysisOptions(
        pg_version=pg_version, small_table_rows=1000, infer_phase=infer_phase, online=online
    )
    connection = backend_connection(engine)
    if offline:
        # As checkmigrations --offline renders: never connects, fails where SQL needs the
        # live schema.
        real = connections["default"] if connection is default_connection else connection
        connection = offline_connection(real, pg_version)
    try:
        report, _ = analyse_migration(
            migration,
            state,
            connection,
            options,
            table_info=table_info,
            live=live,
            applied=False,
            facts=facts,
        )
    finally:
        if connection is not default_connection:
            connection.close()
    return report


def codes(findings: Sequence[Finding]) -> list[str]:
    return sorted(f.code for f in findings)


def flags(code: str, findings: Sequence[Finding]) -> Finding:
    matching = [f for f in findings if f.code == code]
    assert matching, f"{code} did not fire; findings: {[(f.code, f.message) for f in findings]}"
    return matching[0]


def leaves_alone(code: str, findings: Sequence[Finding]) -> None:
    matching = [f for f in findings if f.code == code]
    assert not matching, f"{code} fired: {[f.message for f in matching]}"
