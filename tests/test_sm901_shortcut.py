"""SM901 skips Django's autodetector when the walked state equals the models.

The autodetector only reports differences between two project states, so when every
model state is equal there is nothing to report. The shortcut must never hide a change:
each drift below is one the autodetector reports, and the shortcut must send it there.
Django's autodetector is the oracle in every case.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.db import models
from django.db.migrations.autodetector import MigrationAutodetector
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.state import ModelState, ProjectState

from django_safemigrate.analysis import project


def author() -> ModelState:
    return ModelState(
        "library",
        "Author",
        [
            ("id", models.BigAutoField(primary_key=True)),
            ("name", models.CharField(max_length=100)),
        ],
    )


def book(
    fields: Callable[[list[tuple[str, models.Field]]], None] = lambda fields: None,
    options: dict | None = None,
    managers: list | None = None,
) -> ModelState:
    """A fresh model state each call (new field objects), changed by ``fields``."""
    field_list: list[tuple[str, models.Field]] = [
        ("id", models.BigAutoField(primary_key=True)),
        ("title", models.CharField(max_length=200)),
        ("pages", models.IntegerField(null=True)),
        ("author", models.ForeignKey("library.author", on_delete=models.CASCADE)),
    ]
    fields(field_list)
    base_options = {"indexes": [], "constraints": []}
    base_options.update(options or {})
    return ModelState("library", "Book", field_list, base_options, managers=managers)


def project_state(*models: ModelState) -> ProjectState:
    state = ProjectState()
    for model in models:
        state.add_model(model)
    return state


def autodetector_changes(before: ProjectState, after: ProjectState) -> dict:
    return MigrationAutodetector(before, after)._detect_changes()


def _replace(name: str, field: models.Field) -> Callable[[list], None]:
    def change(fields: list[tuple[str, models.Field]]) -> None:
        fields[[n for n, _ in fields].index(name)] = (name, field)

    return change


DRIFTS: dict[str, Callable[[], ModelState | None]] = {
    "field added": lambda: book(lambda f: f.append(("isbn", models.CharField(max_length=13)))),
    "field removed": lambda: book(lambda f: f.pop(2)),
    "max_length changed": lambda: book(_replace("title", models.CharField(max_length=300))),
    "null changed": lambda: book(_replace("pages", models.IntegerField())),
    "db_default added": lambda: book(_replace("pages", models.IntegerField(db_default=0))),
    "db_index added": lambda: book(
        _replace("pages", models.IntegerField(null=True, db_index=True))
    ),
    "on_delete changed": lambda: book(
        _replace("author", models.ForeignKey("library.author", on_delete=models.PROTECT))
    ),
    "ordering": lambda: book(options={"ordering": ["title"]}),
    "db_table": lambda: book(options={"db_table": "books"}),
    "index": lambda: book(
        options={"indexes": [models.Index(fields=["title"], name="book_title_idx")]}
    ),
    "constraint": lambda: book(
        options={
            "constraints": [models.CheckConstraint(condition=models.Q(pages__gt=0), name="pages")]
        }
    ),
    "unique_together": lambda: book(options={"unique_together": {("title", "author")}}),
    "manager": lambda: book(managers=[("books", models.Manager())]),
    "model deleted": lambda: None,
}


@pytest.mark.parametrize("drift", sorted(DRIFTS))
def test_every_drift_goes_to_the_autodetector(drift: str) -> None:
    changed = DRIFTS[drift]()
    before = project_state(author(), book())
    after = project_state(author(), *([changed] if changed else []))
    assert autodetector_changes(before, after), f"the oracle sees no change for {drift}"
    assert not project._same_models(before, after)


def test_a_new_model_goes_to_the_autodetector() -> None:
    before = project_state(author(), book())
    extra = ModelState("library", "Shelf", [("id", models.BigAutoField(primary_key=True))])
    after = project_state(author(), book(), extra)
    assert autodetector_changes(before, after)
    assert not project._same_models(before, after)


def test_equal_states_built_separately_take_the_shortcut() -> None:
    before = project_state(author(), book())
    after = project_state(author(), book(lambda f: f.reverse()))  # field order is not a change
    assert not autodetector_changes(before, after)
    assert project._same_models(before, after)


def test_models_in_sync_with_their_migrations_skip_the_autodetector(monkeypatch) -> None:
    loader = MigrationLoader(None, ignore_no_migrations=True)

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the autodetector ran for models in sync with their migrations")

    monkeypatch.setattr(project, "MigrationAutodetector", refuse)
    assert project.missing_migrations(loader, set()) == []


def test_models_out_of_sync_still_run_the_autodetector(monkeypatch) -> None:
    loader = MigrationLoader(None, ignore_no_migrations=True)
    state = loader.project_state()
    shop_key = next(key for key in state.models if key[0] == "shop")
    state.models[shop_key].fields["forgotten"] = models.IntegerField(null=True)
    problems = project.missing_migrations(loader, set(), state)
    assert [p.code for p in problems] == ["SM901"]
    assert "forgotten" in problems[0].message


def test_abstract_false_read_from_a_class_is_no_change() -> None:
    """``auth.User`` read from its class carries ``abstract: False``; its migrations do not."""
    before = project_state(author(), book())
    after = project_state(author(), book(options={"abstract": False}))
    assert not autodetector_changes(before, after)
    assert project._same_models(before, after)
