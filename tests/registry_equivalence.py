"""Print, as JSON, where the registry a walked state hands to code differs from Django's.

``python registry_equivalence.py settled`` walks the configured project's history twice side
by side: with ``IncrementalState`` as ``migrate`` applies it (``state_before`` for the copy
before each operation, ``settle()`` before code runs), and with Django's own
``ProjectState`` and a whole ``clone()`` before each operation. Before every ``RunPython``,
and every third operation besides (so that changes pile up between two settles), both
registries are described model by model (fields, columns, what each relation leads to and
whether that is the registry's current class, reverse accessors and what they lead to,
parents) and compared. ``unsettled`` skips ``settle()``: it shows what the comparison
catches. Run with ``DJANGO_SETTINGS_MODULE`` set; no database is needed.
"""

from __future__ import annotations

import json
import sys
from typing import Any


def describe(apps: Any) -> dict[str, Any]:
    """Every model of ``apps`` as code sees it, without class identities."""

    def current(model: Any) -> list[Any]:
        if model is None or isinstance(model, str):
            return [str(model), None]
        label = model._meta.label
        try:
            found = apps.get_model(label)
        except LookupError:
            return [label, "not registered"]
        return [label, found is model]

    described: dict[str, Any] = {}
    for model in apps.get_models(include_auto_created=True):
        opts = model._meta
        fields = []
        for field in opts.get_fields(include_hidden=True):
            entry: list[Any] = [field.name, type(field).__name__, getattr(field, "column", None)]
            if field.is_relation:
                entry += current(field.related_model)
                through = getattr(field.remote_field, "through", None)
                if through is not None and not field.auto_created:
                    entry += ["through", *current(through)]
            if field.auto_created and not field.concrete and field.is_relation:
                # A reverse relation: its accessor on this class, and where it leads.
                accessor = field.get_accessor_name()
                descriptor = getattr(model, accessor, None) if accessor else None
                rel = getattr(descriptor, "rel", None) or getattr(descriptor, "related", None)
                entry += ["accessor", accessor, *current(getattr(rel, "related_model", None))]
            fields.append(entry)
        described[opts.label] = {
            "table": opts.db_table,
            "fields": sorted(fields, key=json.dumps),
            "parents": sorted(json.dumps(current(parent)) for parent in opts.parents),
            "bases": [current(base) for base in model.__bases__ if hasattr(base, "_meta")],
            "pk": opts.pk.name if opts.pk else None,
        }
    return described


def main(mode: str) -> int:
    import django

    django.setup()
    from django.db.migrations.loader import MigrationLoader
    from django.db.migrations.operations.special import RunPython
    from django.db.migrations.state import ProjectState

    from django_safemigrate.execution.walk import uses_models
    from django_safemigrate.sql import IncrementalState, release_retired, state_before

    loader = MigrationLoader(None, ignore_no_migrations=True)
    order: list[tuple[str, str]] = []
    for leaf in sorted(loader.graph.leaf_nodes()):
        for key in loader.graph.forwards_plan(leaf):
            if key not in order:
                order.append(key)
    ours = IncrementalState(real_apps=loader.unmigrated_apps)
    theirs = ProjectState(real_apps=loader.unmigrated_apps)
    ours.apps  # noqa: B018 - rendered from the start, as the executor's state is
    theirs.apps  # noqa: B018
    compared = 0
    differences: list[dict[str, Any]] = []
    counter = 0
    for key in order:
        migration = loader.graph.nodes[key]
        for index, operation in enumerate(migration.operations):
            counter += 1
            due = isinstance(operation, RunPython) or uses_models(operation) or counter % 3 == 0
            if due:
                if mode == "settled":
                    ours.settle()
                # What RunPython.database_forwards does with Django's state.
                theirs.clear_delayed_apps_cache()
                a, b = describe(ours.apps), describe(theirs.apps)
                compared += 1
                if a != b:
                    for label in sorted(set(a) | set(b)):
                        if a.get(label) != b.get(label):
                            differences.append(
                                {
                                    "migration": ".".join(key),
                                    "operation": index,
                                    "model": label,
                                    "ours": a.get(label),
                                    "django": b.get(label),
                                }
                            )
            state_before(operation, migration.app_label, ours)
            operation.state_forwards(migration.app_label, ours)
            theirs = theirs.clone()
            operation.state_forwards(migration.app_label, theirs)
        release_retired(ours)
    json.dump(
        {"compared": compared, "operations": counter, "differences": differences[:20],
         "difference_count": len(differences)},
        sys.stdout,
        default=str,
    )  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
