"""What a data migration sees of the ``apps`` registry it is given, written to a file.

Each ``RunPython`` of the ``fa_people``/``fa_shop`` scenario calls :func:`record`; when
``FRESH_APPLY_FINGERPRINTS`` names a file, one JSON line is appended: for every model of the
registry, its table, its fields (type, column, related model and whether the related class
*is* the registry's class for that label), its reverse relations and its parents. Two
commands applying the same history must hand every data migration the same registry.
"""

from __future__ import annotations

import json
import os
from typing import Any

from django.db.models import ForeignObjectRel

ENV = "FRESH_APPLY_FINGERPRINTS"


def record(apps: Any, where: str) -> None:
    path = os.environ.get(ENV)
    if not path:
        return
    line = json.dumps({"at": where, "models": fingerprint(apps)}, sort_keys=True)
    with open(path, "a", encoding="utf-8") as out:
        out.write(line + "\n")


def _related(apps: Any, model: Any) -> dict[str, Any] | None:
    if model is None:
        return None
    if isinstance(model, str):  # a lazy reference that was never resolved
        return {"label": model, "is_registry_class": False}
    label = model._meta.label_lower
    try:
        registered = apps.get_model(label)
    except LookupError:
        registered = None
    return {"label": label, "is_registry_class": registered is model}


def _field(apps: Any, field: Any) -> dict[str, Any]:
    found: dict[str, Any] = {
        "name": field.name,
        "type": type(field).__name__,
        "column": getattr(field, "column", None),
        "primary_key": getattr(field, "primary_key", False),
        "null": getattr(field, "null", False),
        "unique": getattr(field, "unique", False) if field.concrete else None,
        "model": _related(apps, field.model),
        "related": _related(apps, field.related_model) if field.is_relation else None,
    }
    if field.many_to_one or field.one_to_one:
        found["target"] = field.target_field.name
        found["parent_link"] = field.remote_field.parent_link
    if field.many_to_many:
        found["through"] = _related(apps, field.remote_field.through)
        found["m2m_table"] = field.m2m_db_table()
    return found


def _reverse(apps: Any, rel: Any) -> dict[str, Any]:
    return {
        "name": rel.name,
        "accessor": rel.get_accessor_name(),
        "type": type(rel).__name__,
        "related": _related(apps, rel.related_model),
        "field": rel.field.name,
        "field_model": _related(apps, rel.field.model),
    }


def fingerprint(apps: Any) -> dict[str, Any]:
    models = {}
    for model in apps.get_models(include_auto_created=True):
        meta = model._meta
        forward, reverse = [], []
        for field in meta.get_fields(include_hidden=True):
            if isinstance(field, ForeignObjectRel):
                reverse.append(_reverse(apps, field))
            else:
                forward.append(_field(apps, field))
        models[meta.label_lower] = {
            "class_is_registered": apps.get_model(meta.label_lower) is model,
            "db_table": meta.db_table,
            "proxy": meta.proxy,
            "concrete_model": _related(apps, meta.concrete_model),
            "pk": meta.pk.name if meta.pk else None,
            "fields": forward,
            # Registration order is not part of what a migration can rely on.
            "reverse": sorted(reverse, key=lambda r: json.dumps(r, sort_keys=True)),
            "parents": [
                {"parent": _related(apps, parent), "link": link.name if link else None}
                for parent, link in meta.parents.items()
            ],
        }
    return models
