"""Apply a plan walking the project state forward once, at the cost of what each operation touches.

Django's executor copies the whole project state before every operation and, after most
changes, re-renders every model related to the changed one: on a project whose models are
connected (every model pointing at the user model is enough), each operation costs the size
of the project, and a fresh database of N migrations costs O(N^2). The analysis already walks
histories with :class:`~django_safemigrate.sql.IncrementalState`, which renders the SQL
Django's executor renders while re-rendering only what that SQL depends on; applying walks
the same way:

* the state before each operation is :func:`~django_safemigrate.sql.state_before` (the model
  states the operation changes are copied, the rest shared) instead of a whole ``clone()``;
* before code that uses the rendered models as models (``RunPython``, a backfill, the
  database side of ``SeparateDatabaseAndState``), the state is settled
  (:meth:`IncrementalState.settle`): every model that may point at a class since replaced is
  re-rendered, so the code gets the registry Django's executor would give it;
* a migration with an operation the walk does not know (a project's or a package's own
  operation, whose ``state_forwards`` may change anything) is applied the way Django's
  executor applies it, on a plain ``ProjectState``; the walk resumes after it. Said from
  verbosity 2.

``SAFEMIGRATE["LINEAR_APPLY"] = False`` applies every migration as Django does.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

from django.db import transaction
from django.db.migrations import Migration
from django.db.migrations.operations.special import RunPython, RunSQL, SeparateDatabaseAndState
from django.db.migrations.state import ProjectState

from django_safemigrate import djangocompat
from django_safemigrate.sql import (
    IncrementalApps,
    IncrementalState,
    release_retired,
    state_before,
    walkable,
)


def fallback_reason(migration: Migration) -> str | None:
    """Why ``migration`` is applied the way Django does, or ``None`` when it can be walked."""
    for index, operation in enumerate(migration.operations):
        if not walkable(operation):
            return (
                f"operation {index + 1} ({type(operation).__name__}) is not one of Django's "
                "or this package's, and may change the project state in any way"
            )
    return None


def incremental(state: ProjectState) -> IncrementalState:
    """``state`` as an :class:`IncrementalState` (its model states and rendered registry are
    taken over: ``state`` must not be used afterwards)."""
    if isinstance(state, IncrementalState):
        return state
    walked = IncrementalState(models=state.models, real_apps=state.real_apps)
    apps = state.__dict__.get("apps")
    if isinstance(apps, IncrementalApps) and not state.is_delayed:
        # A clone of a walked state (Django's migrate command clones the state it built and
        # rendered whole before the run): the same registry, consistent as long as nothing
        # was re-rendered in it without being settled since.
        walked.apps = apps
    djangocompat.copy_relation_index(state, walked)
    return walked


def plain(state: ProjectState) -> ProjectState:
    """``state`` as Django's own ``ProjectState``, rendered afresh when first used (its model
    states are taken over: ``state`` must not be used afterwards)."""
    if type(state) is ProjectState:
        return state
    return ProjectState(models=state.models, real_apps=state.real_apps)


def apply_operations(migration: Migration, state: ProjectState, schema_editor: Any) -> ProjectState:
    """``migration.apply(state, schema_editor)`` walking ``state`` forward.

    The loop of Django's ``Migration.apply()`` (without ``collect_sql``, which the executor
    never asks for), with :func:`state_before` for the copy of the state before each
    operation. Any other state, and a migration :func:`fallback_reason` refuses, go through
    Django's ``Migration.apply()`` itself.
    """
    if not isinstance(state, IncrementalState) or fallback_reason(migration) is not None:
        # The class's method: applied_by() may have put this function in its place.
        applied: ProjectState = type(migration).apply(migration, state, schema_editor)
        return applied
    for operation in migration.operations:
        if uses_models(operation):
            state.settle()
        old_state = state_before(operation, migration.app_label, state)
        operation.state_forwards(migration.app_label, state)
        atomic_operation = operation.atomic or (migration.atomic and operation.atomic is not False)
        if not schema_editor.atomic_migration and atomic_operation:
            # Force a transaction on a non-transactional-DDL backend or an atomic
            # operation inside a non-atomic migration (as Django does).
            with transaction.atomic(schema_editor.connection.alias):
                operation.database_forwards(migration.app_label, schema_editor, old_state, state)
        else:
            operation.database_forwards(migration.app_label, schema_editor, old_state, state)
    release_retired(state)
    return state


def uses_models(operation: Any) -> bool:
    """Whether ``operation`` runs code against the rendered models (not only SQL from them)."""
    from django_safemigrate.execution.backfill import Backfill

    if isinstance(operation, SeparateDatabaseAndState):
        return any(not isinstance(inner, RunSQL) for inner in operation.database_operations)
    return isinstance(operation, RunPython | Backfill)


@contextlib.contextmanager
def applied_by(
    migration: Migration, apply: Callable[[ProjectState, Any], ProjectState]
) -> Iterator[None]:
    """Make Django's executor run ``migration``'s operations with ``apply`` (in place of
    ``migration.apply``) until the block ends: its ``apply_migration()`` does everything
    else (schema editor, deferred SQL, records, progress) as it always does."""
    migration.apply = apply  # type: ignore[method-assign, assignment]
    try:
        yield
    finally:
        del migration.apply


def describe_fallback(migration: Migration, reason: str) -> str:
    return (
        f"  {migration.app_label}.{migration.name}: applied as Django's executor applies it "
        f"(the whole state copied before each operation): {reason}"
    )
