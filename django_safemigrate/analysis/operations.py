"""What of an operation reaches the database (the database side of
``SeparateDatabaseAndState``), and the models it works on."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.utils import truncate_name
from django.db.migrations import SeparateDatabaseAndState
from django.db.migrations.state import ModelState, ProjectState


def database_operations(operation: Any) -> Iterator[Any]:
    """The operation, or the database side of a ``SeparateDatabaseAndState`` (its state side
    never runs)."""
    if isinstance(operation, SeparateDatabaseAndState):
        for inner in operation.database_operations:
            yield from database_operations(inner)
    else:
        yield operation


def database_side(
    operation: Any, state: ProjectState, app_label: str
) -> Iterator[tuple[Any, ProjectState]]:
    """Each operation that reaches the database, with the project state before it.

    Only the database side of ``SeparateDatabaseAndState`` counts; its operations
    run one after the other, each seeing the state the previous one left.
    """
    if not isinstance(operation, SeparateDatabaseAndState):
        yield operation, state
        return
    for inner in operation.database_operations:
        yield from database_side(inner, state, app_label)
        state = state.clone()
        inner.state_forwards(app_label, state)


def state_model(state: ProjectState, app_label: str, model_name: str) -> Any:
    """The rendered model class ``app_label.model_name`` in ``state``, or ``None``."""
    if (app_label, model_name.lower()) not in state.models:
        return None
    return state.apps.get_model(app_label, model_name)


def state_table(model_state: ModelState, connection: BaseDatabaseWrapper) -> str:
    """A model state's table, without rendering the model (named as ``Options`` names it)."""
    explicit = model_state.options.get("db_table")
    if explicit:
        return str(explicit)
    default = f"{model_state.app_label}_{model_state.name_lower}"
    return str(truncate_name(default, connection.ops.max_name_length()))
