"""Judge a plan that unapplies migrations: the gate on the reverse SQL.

Unapplying an ``AddField`` drops the column and its data; unapplying a ``CreateModel``
drops the table. A rollback is judged like a deploy, on what it really runs
(:mod:`django_safemigrate.analysis.backwards`), and a migration whose reverse needs a
review under ``REVIEW`` waits for an approval of its rollback: approving a migration
does not approve unapplying it. Phases do not apply (a rollback runs when it is asked
for), and a blocked migration stops the whole rollback: unapplying part of it and
leaving the rest would mix two releases' schemas.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from django.db.migrations import Migration
from django.db.migrations.loader import MigrationLoader
from django.utils import timezone

from django_safemigrate import scope
from django_safemigrate.analysis.analyzer import AnalysisOptions
from django_safemigrate.analysis.backwards import analyse_backwards, refuse_irreversible
from django_safemigrate.analysis.database import server_major, table_sizes
from django_safemigrate.conf import SafemigrateSettings
from django_safemigrate.enums import Direction, OnBlocked, Phase, RequestedPhase, Risk
from django_safemigrate.governance import store
from django_safemigrate.governance.gate import GateItem, GatePolicy, decide

Key = tuple[str, str]


def judge_backwards(
    connection: Any,
    loader: MigrationLoader,
    migrations: Sequence[Migration],
    settings: SafemigrateSettings,
    *,
    history_readable: bool,
) -> Any:
    """The gate's decision on unapplying ``migrations`` (in the unapply plan's order)."""
    from django_safemigrate.governance.judge import Judged

    refuse_irreversible(migrations)
    keys = [(m.app_label, m.name) for m in migrations]
    policy = GatePolicy(
        review_at=settings.review,
        review_kinds=settings.review_kinds,
        phase=RequestedPhase.ALL,
        on_blocked=OnBlocked.STOP,
        govern=settings.govern,
        now=timezone.now(),
        backward=True,
    )
    pg_version = server_major(connection)
    by_key = dict(zip(keys, migrations, strict=True))
    if not settings.govern:
        items = [GateItem(key, "", Risk.SAFE, Phase.ALWAYS) for key in keys]
        return Judged(
            decide(items, policy),
            {},
            by_key,
            {},
            pg_version,
            settings,
            policy,
            "SAFEMIGRATE = 'disabled' (the older package's mode): no review or phase gate",
            direction=Direction.BACKWARD,
        )
    options = AnalysisOptions(
        pg_version=pg_version,
        small_table_rows=settings.small_table_rows,
        severity_overrides=dict(settings.rules),
        infer_phase=settings.infer_phase,
    )
    sizes = table_sizes(connection)
    off = {code for code, severity in settings.rules.items() if severity is None}
    analysed = analyse_backwards(loader, keys, connection, options, table_info=sizes.get, live=True)
    reports = {
        (r.app_label, r.name): dataclasses.replace(
            r, findings=tuple(f for f in r.findings if f.code not in off)
        )
        for r in scope.scoped(analysed, settings)
    }
    reviews = (
        store.past_reviews(connection.alias, keys, Direction.BACKWARD) if history_readable else {}
    )
    planned = set(keys)
    items = []
    for migration, key in zip(migrations, keys, strict=True):
        report = reports[key]
        # Unapplied first: the migrations that depend on it (they come earlier in the plan).
        children = tuple(
            child.key for child in loader.graph.node_map[key].children if child.key in planned
        )
        items.append(
            GateItem(
                key=key,
                checksum=report.checksum,
                risk=report.risk,
                phase=Phase.ALWAYS,
                dependencies=children,
                reviews=store.for_current_file(reviews.get(key, ()), migration, report.checksum),
                kinds=report.kinds,
                governed=report.governed,
            )
        )
    return Judged(
        decide(items, policy),
        reports,
        by_key,
        sizes,
        pg_version,
        settings,
        policy,
        operations={key: report.operations for key, report in reports.items()},
        direction=Direction.BACKWARD,
    )
