"""Judge a ``safemigrate`` plan: analyse it, read the reviews, ask the gate.

Shared by the deploy run (which then records what it decided) and ``--plan``
(which only shows it).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from django.db.migrations import Migration
from django.db.migrations.loader import MigrationLoader
from django.utils import timezone

from django_safemigrate import scope
from django_safemigrate.analysis.analyzer import AnalysisOptions, analyse
from django_safemigrate.analysis.database import server_major, table_sizes
from django_safemigrate.analysis.findings import MigrationReport, TableInfo
from django_safemigrate.conf import SafemigrateSettings
from django_safemigrate.enums import Direction, OnBlocked, Phase, RequestedPhase, Risk
from django_safemigrate.exceptions import UsageError
from django_safemigrate.governance import store
from django_safemigrate.governance.first_deploy import first_deploy
from django_safemigrate.governance.gate import GateItem, GatePolicy, GateResult, decide
from django_safemigrate.governance.markers import LEGACY_ATTRIBUTE
from django_safemigrate.governance.phase import declared_or_error
from django_safemigrate.sql import OperationSQL

Key = tuple[str, str]


@dataclasses.dataclass(frozen=True)
class Judged:
    result: GateResult
    reports: dict[Key, MigrationReport]
    migrations: dict[Key, Migration]
    sizes: dict[str, TableInfo]
    pg_version: int
    settings: SafemigrateSettings
    policy: GatePolicy
    #: Why the gate let everything through without judging (``None`` when it judged).
    ungoverned: str | None = None
    #: What each forward migration of the plan runs, operation by operation, as the analysis
    #: rendered it (``--plan`` shows its steps from this; empty when nothing was rendered).
    operations: dict[Key, tuple[OperationSQL, ...]] = dataclasses.field(default_factory=dict)
    #: The run is (or continues) the database's first deploy
    #: (:mod:`django_safemigrate.governance.first_deploy`).
    first_deploy: bool = False
    #: Applying the plan, or unapplying it (:mod:`django_safemigrate.governance.rollback`).
    direction: Direction = Direction.FORWARD


def effective_settings(
    settings: SafemigrateSettings, migrations: Sequence[Migration]
) -> SafemigrateSettings:
    """The settings the gate uses.

    A project that has not set ``SAFEMIGRATE`` but marks its migrations with the older
    package's ``safe = Safe...`` runs the pre-deploy phase by default, as that package's
    ``safemigrate`` did: switching packages must not start applying ``after_deploy``
    migrations before the deploy. Everything else is this app's default: a marker
    declares a phase and never turns reviews off; only the explicit string setting
    selects the older package's mode.
    """
    if not settings.configured and any(hasattr(m, LEGACY_ATTRIBUTE) for m in migrations):
        return dataclasses.replace(settings, default_phase=RequestedPhase.PRE)
    return settings


def without_reviews(settings: SafemigrateSettings) -> str | None:
    """Why ``settings`` let ``safemigrate`` apply migrations without any review, if they do."""
    if settings.legacy_mode is not None:
        return (
            f"SAFEMIGRATE = {settings.legacy_mode!r} selects the older package's mode, "
            "which needs no reviews"
        )
    if settings.review is None and not settings.review_kinds:
        return "SAFEMIGRATE['REVIEW'] = 'never' needs no reviews"
    return None


def declared_all(migrations: Sequence[Migration]) -> None:
    """Raise one usage error naming every migration with an invalid phase marker."""
    problems = []
    for migration in migrations:
        try:
            declared_or_error(migration)
        except UsageError as exc:
            problems.append(str(exc.__cause__ or exc))
            bad = f"{migration.app_label}.{migration.name}"
            problems[-1] = f"{bad}: {problems[-1]}"
    if problems:
        raise UsageError(
            "Migrations declare their phase wrongly (invalid safe properties): "
            + "; ".join(problems)
            + ". Use safe = Safe.before_deploy(), Safe.after_deploy() or Safe.always() (from "
            "django_safemigrate import Safe), or safemigrate_phase = 'pre_deploy', "
            "'post_deploy' or 'always'. Nothing was applied."
        )


def judge(
    connection: Any,
    loader: MigrationLoader,
    plan: Sequence[tuple[Migration, bool]],
    settings: SafemigrateSettings,
    *,
    phase: RequestedPhase | None,
    apply_unblocked: bool,
    history_readable: bool,
    render_ungoverned: bool = False,
) -> Judged | None:
    """The gate's decision on ``plan``; ``None`` when the plan is empty. A plan that
    unapplies migrations is judged on their reverse
    (:func:`django_safemigrate.governance.rollback.judge_backwards`).

    With ``render_ungoverned`` (``--plan``), a plan the gate lets through unjudged is still
    rendered, for its steps.
    """
    migrations = [migration for migration, _ in plan]
    if not migrations:
        return None
    settings = effective_settings(settings, list(loader.disk_migrations.values()))
    backwards = [m for m, is_backwards in plan if is_backwards]
    if backwards and settings.legacy_mode in ("strict", "nonstrict"):
        raise UsageError(
            "safemigrate does not unapply migrations in the older package's "
            f"'{settings.legacy_mode}' mode (as that package did not); use 'migrate APP "
            "MIGRATION' to go backwards. Nothing was applied."
        )
    if backwards:
        if len(backwards) != len(migrations):
            raise UsageError(
                "The plan both applies and unapplies migrations; safemigrate takes one "
                "direction per run. Nothing was applied."
            )
        from django_safemigrate.governance.rollback import judge_backwards

        judged: Judged = judge_backwards(
            connection, loader, migrations, settings, history_readable=history_readable
        )
        return judged
    if settings.govern:
        # An invalid marker stops the run before anything (all of them named at once).
        declared_all(migrations)
    # New: nothing applied but this app's own tables (which every run creates first), or
    # a first deploy that was interrupted and has not completed.
    first = first_deploy(connection, loader.applied_migrations, history_readable=history_readable)
    fresh = first is not None
    policy = GatePolicy(
        review_at=settings.review,
        review_kinds=settings.review_kinds,
        phase=phase or settings.default_phase,
        on_blocked=OnBlocked.APPLY_UNBLOCKED if apply_unblocked else settings.on_blocked,
        govern=settings.govern and (settings.govern_fresh_database or not fresh),
        now=timezone.now(),
    )
    ungoverned = None
    if not settings.govern:
        ungoverned = "SAFEMIGRATE = 'disabled' (the older package's mode): no review or phase gate"
    elif fresh and not settings.govern_fresh_database:
        ungoverned = f"{first}, and a new database is not gated (GOVERN_FRESH_DATABASE)"
    pg_version = server_major(connection)
    keys = [(m.app_label, m.name) for m in migrations]
    options = AnalysisOptions(
        pg_version=pg_version,
        small_table_rows=settings.small_table_rows,
        severity_overrides=dict(settings.rules),
        infer_phase=settings.infer_phase,
        # What the runner does: online forms, except on a new database (no traffic yet).
        online=settings.online and not fresh,
    )
    if ungoverned:
        # Nothing to judge: skip the analysis (a new database applies its whole history),
        # unless the caller shows the plan's steps.
        forward = [(m.app_label, m.name) for m, is_backwards in plan if not is_backwards]
        rendered = (
            analyse(loader, forward, connection, options, applied=set(), live=True)
            if render_ungoverned and forward
            else []
        )
        items = [GateItem(key, "", Risk.SAFE, Phase.ALWAYS) for key in keys]
        return Judged(
            decide(items, policy),
            {},
            dict(zip(keys, migrations, strict=True)),
            {},
            pg_version,
            settings,
            policy,
            ungoverned,
            {(r.app_label, r.name): r.operations for r in rendered},
            first_deploy=fresh,
        )

    sizes = table_sizes(connection)
    off = {code for code, severity in settings.rules.items() if severity is None}
    reports = {}
    analysed_reports = analyse(
        loader, keys, connection, options, applied=set(), table_info=sizes.get, live=True
    )
    for analysed in scope.scoped(analysed_reports, settings):
        findings = tuple(f for f in analysed.findings if f.code not in off)
        reports[(analysed.app_label, analysed.name)] = dataclasses.replace(
            analysed, findings=findings
        )
    reviews = store.past_reviews(connection.alias, keys) if history_readable else {}
    detected = store.detections(connection.alias, keys) if history_readable else {}
    items = []
    for migration, key in zip(migrations, keys, strict=True):
        report = reports[key]
        declared = declared_or_error(migration)
        items.append(
            GateItem(
                key=key,
                checksum=report.checksum,
                risk=report.risk,
                phase=report.phase,
                dependencies=tuple(parent.key for parent in loader.graph.node_map[key].parents),
                reviews=store.for_current_file(reviews.get(key, ()), migration, report.checksum),
                delay=declared.delay if declared else None,
                detected=detected.get(key),
                kinds=report.kinds,
                governed=report.governed,
            )
        )
    return Judged(
        decide(items, policy),
        reports,
        dict(zip(keys, migrations, strict=True)),
        sizes,
        pg_version,
        settings,
        policy,
        operations={key: report.operations for key, report in reports.items()},
        first_deploy=fresh,
    )


def record(connection: Any, judged: Judged, *, fake: bool, run: int | None = None) -> None:
    """Keep what the gate decided: the review screen's records, delays' start, signals.

    Every migration of the plan is kept, with what the gate decided and the ledger's
    ``run`` that judged it: the review screen lists what is waiting, not only what
    needs a decision.
    """
    from django_safemigrate.governance.signals import migration_blocked
    from django_safemigrate.governance.snapshot import gate_fields, snapshot_fields
    from django_safemigrate.models import GovernedMigration

    if judged.ungoverned:
        return
    using = connection.alias
    now = judged.policy.now or timezone.now()
    decisions = judged.result.decisions
    for position, decision in enumerate(decisions):
        report = judged.reports[decision.key]
        fields = snapshot_fields(
            report,
            judged.migrations[decision.key],
            connection=connection,
            pg_version=judged.pg_version,
            settings=judged.settings,
            sizes=judged.sizes,
        )
        fields["analysis"]["gate"] = gate_fields(
            decision,
            judged.policy,
            run=run,
            position=position,
            plan=len(decisions),
            stopped=judged.result.stopped,
        )
        store.record_gate(using, decision, fields, now=now, direction=judged.direction)
    if not judged.result.stopped and not fake and judged.direction is Direction.FORWARD:
        store.mark_detected(
            using,
            [d.key for d in judged.result.decisions],
            {key: r.phase for key, r in judged.reports.items()},
            now,
        )
    for decision in judged.result.blocked:
        report = judged.reports[decision.key]
        migration_blocked.send(
            sender=GovernedMigration,
            app_label=decision.key[0],
            name=decision.key[1],
            checksum=report.checksum,
            risk=report.risk,
            reasons=decision.reasons,
            using=using,
        )


def approvals(using: str, judged: Judged) -> dict[Key, str]:
    """For each migration of the plan that runs on an approval: who approved it, when and
    why, as the ledger keeps it on the migration's record."""
    from django_safemigrate.enums import Decision, ReviewState
    from django_safemigrate.models import Review

    approved = [d.key for d in judged.result.decisions if d.review is ReviewState.APPROVED]
    if not approved:
        return {}
    found: dict[Key, str] = {}
    rows = (
        Review.objects.using(using)
        .filter(
            migration__app_label__in={key[0] for key in approved},
            migration__direction=judged.direction.value,
            decision=Decision.APPROVE.value,
        )
        .select_related("migration")
        .order_by("-created_at", "-id")
    )
    for review in rows:
        key = (review.migration.app_label, review.migration.name)
        report = judged.reports.get(key)
        if key not in approved or key in found or report is None:
            continue
        if review.checksum != report.checksum:
            continue
        found[key] = (
            f"approved by {review.reviewer_name} at {review.created_at:%Y-%m-%d %H:%M:%S %Z} "
            f"({review.source}, review {review.pk}): {review.note}"
        )
    return found
