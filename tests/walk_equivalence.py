"""Print, as JSON, what the analysis finds in every migration of the configured project.

``python walk_equivalence.py incremental`` walks the history the way ``checkmigrations``
does (``IncrementalState``); ``python walk_equivalence.py django`` walks it with Django's
own ``ProjectState`` and a full ``clone()`` before each operation, as Django's executor
does. The two outputs must be equal (tests/test_state_walk.py): the incremental state is
only allowed to be faster. Run with ``DJANGO_SETTINGS_MODULE`` set; SQL is rendered offline
for PostgreSQL 15, so no database is needed.
"""

from __future__ import annotations

import json
import sys
from typing import Any


def main(mode: str) -> int:
    import django

    django.setup()
    from django.db import connections
    from django.db.backends.base.schema import BaseDatabaseSchemaEditor
    from django.db.backends.postgresql.schema import DatabaseSchemaEditor as PostgresSchemaEditor
    from django.db.migrations.loader import MigrationLoader
    from django.db.migrations.state import ProjectState

    from django_safemigrate import sql
    from django_safemigrate.analysis import analyzer
    from django_safemigrate.analysis.database import offline_connection

    # Offline, the schema editor cannot look up constraint names, and the operations whose
    # SQL depends most on other models (a referenced key changing) would not render in
    # either walk; a made-up name per lookup lets their SQL be compared too.
    def constraint_names(
        _editor: Any, model: Any, column_names: Any = None, **_kwargs: Any
    ) -> list[str]:
        return [f"{model._meta.db_table}_{'_'.join(column_names or ['all'])}_stub"]

    def sequence_name(_editor: Any, table: str, column: str) -> str:
        return f"{table}_{column}_seq"

    BaseDatabaseSchemaEditor._constraint_names = constraint_names  # type: ignore[method-assign]
    if hasattr(PostgresSchemaEditor, "_get_sequence_name"):
        PostgresSchemaEditor._get_sequence_name = sequence_name
    if mode == "django":
        analyzer.IncrementalState = ProjectState  # type: ignore[misc]
        sql.state_before = lambda _operation, _app_label, state: state.clone()
    elif mode != "incremental":
        print(f"unknown mode {mode!r}: use 'incremental' or 'django'", file=sys.stderr)
        return 2
    loader = MigrationLoader(None, ignore_no_migrations=True)
    options = analyzer.AnalysisOptions(pg_version=15, small_table_rows=0)
    reports, state = analyzer.analyse_and_walk(
        loader,
        set(loader.graph.nodes),
        offline_connection(connections["default"], 15),
        options,
        applied=set(),
        whole_graph=True,
    )
    out: dict[str, Any] = {
        "migrations": [_report(report) for report in reports],
        "final_models": sorted(f"{a}.{m}" for a, m in state.models),
    }
    json.dump(out, sys.stdout, indent=1, sort_keys=True)
    return 0


def _report(report: Any) -> dict[str, Any]:
    return {
        "migration": f"{report.app_label}.{report.name}",
        "phase": str(report.phase),
        "operations": [
            {
                "index": op.index,
                "operation": type(op.operation).__name__,
                "sql": [statement.sql for statement in op.statements],
                "render_error": op.render_error,
            }
            for op in report.operations
        ],
        "findings": [
            {
                "code": f.code,
                "severity": str(f.severity),
                "message": f.message,
                "table": f.table,
                "operation_index": f.operation_index,
                "blocking": f.blocking,
                "sql": f.sql,
            }
            for f in report.findings
        ],
    }


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else ""))
