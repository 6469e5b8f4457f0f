"""Project-level problems (SM9xx): not one operation, but the migrations as a whole."""

from __future__ import annotations

from collections.abc import Mapping

from django.apps import apps
from django.db.migrations.autodetector import MigrationAutodetector
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.state import ModelState, ProjectState

from django_safemigrate.analysis.analyzer import checksum_of, migration_path
from django_safemigrate.analysis.findings import Problem
from django_safemigrate.checksum import Comparison, compare
from django_safemigrate.plan import check_applied

Key = tuple[str, str]


def missing_migrations(
    loader: MigrationLoader, ignored_apps: set[str], state: ProjectState | None = None
) -> list[Problem]:
    """SM901: what ``makemigrations --check`` would find.

    ``state`` is the project state after every migration when the caller already walked
    the history (``analyse_and_walk(whole_graph=True)``); otherwise it is built here.
    """
    current = state if state is not None else loader.project_state()
    target = ProjectState.from_apps(apps)
    if _same_models(current, target):
        # The autodetector only reports differences between the two states, and there are
        # none; running it anyway costs more than the rest of SM901 on a long history.
        return []
    autodetector = MigrationAutodetector(current, target)
    changes = autodetector.changes(graph=loader.graph)
    problems = []
    for app_label, migrations in sorted(changes.items()):
        if app_label in ignored_apps:
            continue
        described = "; ".join(
            op.describe() for migration in migrations for op in migration.operations
        )
        problems.append(
            Problem(
                "SM901",
                f"The models of '{app_label}' have changes without a migration ({described}). "
                f"Run 'python manage.py makemigrations {app_label}' and commit the result.",
                app_label=app_label,
            )
        )
    return problems


def _same_models(current: ProjectState, target: ProjectState) -> bool:
    """Whether every model state is equal in both (same models, fields, options, managers).

    Django's ``ModelState.__eq__`` compares fields by their deconstruction, as the
    autodetector does; a difference it sees that the autodetector would not (a default
    object without ``__eq__``, say) only sends the check the slow way.
    """
    if current.models.keys() != target.models.keys():
        return False
    return all(_same_model(model, target.models[key]) for key, model in current.models.items())


def _same_model(one: ModelState, other: ModelState) -> bool:
    if one == other:
        return True
    # A model state read from a class carries ``abstract: False`` when its abstract parent
    # set ``abstract`` in its Meta (``auth.User``); migrations never write it, and an
    # abstract model has no state at all, so False and absent are the same.
    if one.options.get("abstract") or other.options.get("abstract"):
        return False
    if "abstract" not in one.options and "abstract" not in other.options:
        return False
    one, other = one.clone(), other.clone()
    one.options.pop("abstract", None)
    other.options.pop("abstract", None)
    return one == other


def conflicts(loader: MigrationLoader) -> list[Problem]:
    """SM902: several leaf migrations in one app."""
    return [
        Problem(
            "SM902",
            f"The app '{app_label}' has several leaf migrations ({', '.join(sorted(names))}); "
            "migrate refuses to run. Merge them with 'python manage.py makemigrations --merge' "
            f"{app_label}.",
            app_label=app_label,
        )
        for app_label, names in sorted(loader.detect_conflicts().items())
    ]


def edited_applied(
    loader: MigrationLoader,
    recorded: Mapping[Key, str],
    applied: set[Key],
    definitions: Mapping[Key, str | None] | None = None,
) -> list[Problem]:
    """SM903: applied migrations whose file differs from the ledger's checksum.

    A migration whose own file is the one recorded (its definition checksum) but whose
    reached project code changed is not an edit of the migration: not reported here.
    """
    checked = check_applied(loader, recorded, applied, checksum_of, definitions=definitions)
    return [
        Problem(
            "SM903",
            f"{m.key[0]}.{m.key[1]} was edited after it was applied to this database "
            f"(ledger {m.recorded[:19]}…, file {m.current[:19]}…). Restore the applied "
            "version and put the change in a new migration.",
            path=migration_path(loader.disk_migrations[m.key]),
            app_label=m.key[0],
            name=m.key[1],
        )
        for m in checked.edited
    ]


def lockfile_problems(
    loader: MigrationLoader,
    locked: Mapping[Key, str],
    lockfile: str,
    only: set[Key] | None = None,
) -> list[Problem]:
    """SM904 (edited) and SM905 (deleted) released migrations, from the lockfile.

    With ``only``, checksums are compared for those migrations alone (deleted files are
    still looked for everywhere: that costs nothing).
    """
    problems = []
    for key, checksum in sorted(locked.items()):
        migration = loader.disk_migrations.get(key)
        if migration is None:
            problems.append(
                Problem(
                    "SM905",
                    f"{key[0]}.{key[1]} is in {lockfile} but its file is gone.",
                    hint="Restore it; released migrations are retired by squashing, not by "
                    "deleting.",
                    path=lockfile,
                    app_label=key[0],
                    name=key[1],
                )
            )
            continue
        if only is not None and key not in only:
            continue
        current = checksum_of(migration)
        # A lockfile written by an earlier version holds version 1 checksums: they match
        # when version 1 of the file still gives them.
        if compare(checksum, migration, current) is Comparison.EDITED:
            problems.append(
                Problem(
                    "SM904",
                    f"{key[0]}.{key[1]} was edited after it was released (lockfile "
                    f"{checksum[:19]}…, file {current[:19]}…).",
                    hint="Restore the released version and put the change in a new migration.",
                    path=migration_path(migration),
                    app_label=key[0],
                    name=key[1],
                )
            )
    return problems
