"""The Django internals django_safemigrate relies on are the ones it was written against.

``django_safemigrate/djangocompat.py`` holds every use of Django's private API, names each
Django function whose behaviour the package copies or relies on (``RELIED_ON``), and records
a fingerprint of each for every supported Django minor version (``FINGERPRINTS``). A Django
release that changes one of them, or a Django version never checked, fails here with what
to check again. CI also runs this file on the oldest supported Django (README, "Tests").
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from django_safemigrate import djangocompat
from tests.helpers import ROOT

PACKAGE = ROOT / "django_safemigrate"


def test_the_installed_django_is_as_recorded() -> None:
    minor = djangocompat.django_minor()
    if minor not in djangocompat.FINGERPRINTS:
        pytest.fail(djangocompat.unknown_version_message(minor), pytrace=False)
    found = list(djangocompat.differences(minor))
    if found:
        pytest.fail("\n\n".join(found), pytrace=False)


def test_a_changed_function_is_named_with_what_to_check(monkeypatch: pytest.MonkeyPatch) -> None:
    minor = djangocompat.django_minor()
    recorded = djangocompat.installed_fingerprints()
    recorded["ProjectState.alter_field"] = "0" * 16
    monkeypatch.setitem(djangocompat.FINGERPRINTS, minor, recorded)

    found = list(djangocompat.differences(minor))

    assert len(found) == 1, found
    (paragraph,) = found
    assert f"Django {minor}'s django.db.migrations.state:ProjectState.alter_field differs" in (
        paragraph
    )
    assert "IncrementalState.alter_field (sql.py) is a copy of its body" in paragraph
    assert "python -m django_safemigrate.djangocompat --fingerprints" in paragraph


def test_a_function_missing_from_django_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    minor = djangocompat.django_minor()
    relied_on = {**djangocompat.RELIED_ON, "django.apps.registry:Apps.no_such_method": "a use."}
    recorded = {**djangocompat.installed_fingerprints(), "Apps.no_such_method": "0" * 16}
    monkeypatch.setattr(djangocompat, "RELIED_ON", relied_on)
    monkeypatch.setitem(djangocompat.FINGERPRINTS, minor, recorded)

    (paragraph,) = djangocompat.differences(minor)

    assert "django.apps.registry:Apps.no_such_method is missing" in paragraph
    assert "Re-check: a use." in paragraph


def test_an_unknown_django_version_says_how_to_record_it(monkeypatch: pytest.MonkeyPatch) -> None:
    minor = djangocompat.django_minor()
    monkeypatch.delitem(djangocompat.FINGERPRINTS, minor, raising=False)
    written: list[str] = []

    status = djangocompat.main([], write=written.append)

    assert status == 1
    (message,) = written
    assert f"Django {minor} is not a version" in message
    assert "RELIED_ON" in message
    assert "python -m django_safemigrate.djangocompat --fingerprints" in message
    assert "add the output" in message


def test_the_fingerprints_command_prints_the_entry_to_record() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "django_safemigrate.djangocompat", "--fingerprints"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    entry: dict[str, Any] = ast.literal_eval("{" + result.stdout + "}")
    assert entry == {djangocompat.django_minor(): djangocompat.installed_fingerprints()}


def test_every_relied_on_function_is_found_and_recorded() -> None:
    names = [djangocompat.short_name(name) for name in djangocompat.RELIED_ON]
    assert len(set(names)) == len(names), "two relied-on functions share a short name"
    for name in djangocompat.RELIED_ON:
        assert djangocompat.resolve(name) is not None, name
    for minor, recorded in djangocompat.FINGERPRINTS.items():
        assert sorted(recorded) == sorted(names), minor


def test_a_fingerprint_follows_the_code_not_its_layout() -> None:
    original = '''
        def f(a, b=None):
            """What it does."""
            return [x for x in a if x != b]  # the others
    '''
    relaid = """
    def f(a,
          b=None):
        # no docstring any more
        return [x for x in a
                if x != b]
    """
    changed = """
    def f(a, b=None):
        return [x for x in a if x == b]
    """
    fingerprint = djangocompat.fingerprint_source

    assert fingerprint(original) == fingerprint(relaid)
    assert fingerprint(original) != fingerprint(changed)
    assert fingerprint(original) != fingerprint(original.replace("b=None", "b=0"))


#: Names private to Django (attributes, methods, keys of an instance's ``__dict__``) that
#: only the adapter may use: the private functions it names, and the attributes it reads.
PRIVATE = frozenset(
    {
        *(
            last
            for last in (name.rsplit(".", 1)[-1] for name in djangocompat.RELIED_ON)
            if last.startswith("_") and not last.startswith("__")
        ),
        "_relations",
        "_relation_tree",
        "_alias",
        "collected_sql",
        "deferred_sql",
    }
)
#: Values Django caches on an instance, which only the adapter may set or read directly.
CACHED = frozenset({"pg_version", "_relation_tree"})
#: Django methods whose ``functools`` cache only the adapter may empty or replace.
CACHED_METHODS = frozenset({"get_models", "get_swappable_settings_name"})


def uses_of_private_names(path: Path, root: Path = ROOT) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        name = None
        if isinstance(node, ast.Attribute) and node.attr in PRIVATE:
            name = node.attr
        elif isinstance(node, ast.FunctionDef) and node.name in PRIVATE:
            name = f"def {node.name}"
        elif isinstance(node, ast.Constant) and node.value in PRIVATE:
            name = repr(node.value)
        elif (
            isinstance(node, ast.Subscript)
            and isinstance(node.value, ast.Attribute)
            and node.value.attr == "__dict__"
            and isinstance(node.slice, ast.Constant)
            and node.slice.value in CACHED
        ):
            name = f"__dict__[{node.slice.value!r}]"
        elif (
            isinstance(node, ast.Attribute)
            and node.attr == "cache_clear"
            and isinstance(node.value, ast.Attribute)
            and node.value.attr in CACHED_METHODS
        ):
            name = f"{node.value.attr}.cache_clear"
        if name is not None:
            found.append((node.lineno, name))
    return [f"{path.relative_to(root)}:{line}: {name}" for line, name in sorted(found)]


def test_only_the_adapter_touches_django_internals() -> None:
    found = [
        use
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.name != "djangocompat.py" and "testing" not in path.relative_to(PACKAGE).parts
        for use in uses_of_private_names(path)
    ]

    assert not found, "go through django_safemigrate.djangocompat instead:\n" + "\n".join(found)


def test_the_private_name_scan_sees_each_kind_of_use(tmp_path: Path) -> None:
    module = tmp_path / "module.py"
    module.write_text(
        textwrap.dedent("""
            def f(model, editor, connection):
                model._meta._expire_cache()  # a private method
                mark = len(editor.collected_sql)  # a private attribute
                connection.__dict__["pg_version"] = 150000  # a cached value
                apps.get_models.cache_clear()  # a functools cache
                return mark

            class State:
                def _find_reload_model(self, app_label, model_name, delay=False):
                    return set()
        """)
    )

    found = uses_of_private_names(module, root=tmp_path)

    assert found == [
        "module.py:3: _expire_cache",
        "module.py:4: collected_sql",
        "module.py:5: __dict__['pg_version']",
        "module.py:6: get_models.cache_clear",
        "module.py:10: def _find_reload_model",
    ]
