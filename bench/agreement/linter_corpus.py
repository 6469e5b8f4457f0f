"""django-migration-linter's test project and the verdicts its test suite asserts.

The corpus is ``tests/test_project/``: small apps, each with a few migrations. Its test
suite asserts verdicts in two places, read here with Python's ``ast`` (nothing of the
peer is imported or run):

- ``tests/functional/test_migration_linter.py``: one test per app, run against each
  database backend. The PostgreSQL verdicts are the tests of
  ``PostgresqlBackwardCompatibilityDetectionTestCase``: those of
  ``BaseBackwardCompatibilityDetection`` with its overrides. ``_test_linter_finds_errors``
  says the app has an invalid migration, ``_test_linter_finds_no_errors`` that none is
  invalid, ``assertTrue(linter.nb_warnings)`` that one has warnings.
- ``tests/functional/test_data_migrations.py``: verdicts on single migrations, of a
  linter made in ``setUp`` (tests that build a linter with other options assert those
  options, not a verdict, and are not read).

Those assertions are per app; which migration of an app carries the verdict, and why,
comes from the checks of the linter's analyser, transcribed in :data:`CHECKS` (its
``sql_analyser/base.py`` and ``postgresql.py``, and ``lint_runpython``). The
transcription is checked against the assertions: every app asserted invalid must have a
migration with an error check, no app asserted free of errors may have one, and every
warning asserted must be there. A disagreement stops the run.
"""

from __future__ import annotations

import ast
import dataclasses

from agreement.source import CorpusError, GitTree
from agreement.vocabulary import LINTER, LINTER_ERRORS, Concern, PeerVerdict

PROJECT = "tests/test_project"
FIXTURES = "tests/fixtures.py"
BACKWARD_TESTS = "tests/functional/test_migration_linter.py"
DATA_TESTS = "tests/functional/test_data_migrations.py"
BASE_CLASS = "BaseBackwardCompatibilityDetection"
POSTGRES_CLASS = "PostgresqlBackwardCompatibilityDetectionTestCase"
DATA_CLASS = "DataMigrationDetectionTestCase"

#: The linter's checks that fire on each migration of its test project on PostgreSQL
#: (migrations not listed: none). Error checks make a migration invalid; the others warn.
CHECKS: dict[tuple[str, str], tuple[str, ...]] = {
    ("app_add_not_null_column", "0002_add_new_not_null_field"): ("NOT_NULL",),
    ("app_add_not_null_column_with_null_db_default",
     "0002_a_not_null_field_with_null_db_default"): ("NOT_NULL",),
    ("app_alter_column", "0002_auto_20190414_1456"): ("ALTER_COLUMN",),
    ("app_create_index_exclusive", "0002_user_email"): ("CREATE_INDEX", "CREATE_INDEX_EXCLUSIVE"),
    ("app_data_migrations", "0002_missing_reverse"): ("RUNPYTHON_REVERSIBLE",),
    ("app_data_migrations", "0003_incorrect_arguments"): ("RUNPYTHON_ARGS_NAMING_CONVENTION",),
    ("app_data_migrations", "0004_partial_function"): ("RUNPYTHON_ARGS_NAMING_CONVENTION",),
    ("app_drop_column", "0002_remove_a_field_b"): ("DROP_COLUMN",),
    ("app_drop_table", "0002_delete_a"): ("DROP_TABLE",),
    ("app_make_not_null_with_django_default",
     "0002_make_not_null_with_django_default"): ("NOT_NULL",),
    ("app_rename_column", "0002_auto_20190414_1502"): ("RENAME_COLUMN",),
    ("app_rename_table", "0002_auto_20190414_1500"): ("RENAME_TABLE",),
    ("app_unique_together", "0002_auto_20190729_2122"): ("ADD_UNIQUE",),
}  # fmt: skip
ERROR_CHECKS = frozenset(
    {"NOT_NULL", "DROP_COLUMN", "DROP_TABLE", "RENAME_COLUMN", "RENAME_TABLE",
     "ALTER_COLUMN", "ADD_UNIQUE", "RUNPYTHON_MODEL_IMPORT"}
)  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Assertion:
    """One verdict the test suite asserts, on an app or on one migration."""

    test: str
    where: str
    app: str
    #: ``None``: every migration of the app.
    migration: str | None
    errors: bool
    #: True when the test asserts warnings; False when it asserts none; None: silent.
    warnings: bool | None = None


@dataclasses.dataclass(frozen=True)
class App:
    """One app of the test project as the throwaway project installs it."""

    #: The app's folder under tests/test_project/.
    folder: str
    #: Its label (``my_custom_name`` for the app with a custom AppConfig).
    label: str
    #: What INSTALLED_APPS names (``tests.test_project.<folder>[.apps.Config]``).
    installed_as: str
    migrations: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class Case:
    """One migration of the corpus with the verdict asserted for it."""

    app: App
    migration: str
    peer: PeerVerdict

    @property
    def key(self) -> str:
        return f"{self.app.label}.{self.migration}"


def _fixture_constants(source: str) -> dict[str, str]:
    constants = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
            for target in node.targets:
                if isinstance(target, ast.Name) and isinstance(node.value.value, str):
                    constants[target.id] = node.value.value
    return constants


def _methods(module: ast.Module, class_name: str) -> dict[str, ast.FunctionDef]:
    for node in module.body:
        if isinstance(node, ast.ClassDef) and node.name == class_name:
            return {
                item.name: item
                for item in node.body
                if isinstance(item, ast.FunctionDef) and item.name.startswith("test_")
            }
    raise CorpusError(f"class {class_name} not found")


def _app_argument(node: ast.expr, local: dict[str, str], constants: dict[str, str]) -> str | None:
    if isinstance(node, ast.Name) and node.id in local:
        return local[node.id]
    if (
        isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == "fixtures"
    ):
        return constants.get(node.attr)
    return None


def _backward_assertions(method: ast.FunctionDef, constants: dict[str, str]) -> list[Assertion]:
    """The app verdicts asserted by one test of the backward-compatibility class."""
    out: list[Assertion] = []
    local: dict[str, str] = {}
    launched: str | None = None
    warnings: bool | None = None
    errors: bool | None = None
    where = f"{BACKWARD_TESTS}:{method.lineno}"
    for node in ast.walk(method):
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
            value = _app_argument(node.value, local, constants)
            if isinstance(target, ast.Name) and value is not None:
                local[target.id] = value
            if (
                isinstance(node.value, ast.Call)
                and isinstance(node.value.func, ast.Attribute)
                and node.value.func.attr == "_launch_linter"
                and node.value.args
            ):
                launched = _app_argument(node.value.args[0], local, constants)
    for node in ast.walk(method):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        name = node.func.attr
        keywords = {k.arg for k in node.keywords}
        if name in ("_test_linter_finds_errors", "_test_linter_finds_no_errors"):
            if "commit_id" in keywords or len(node.args) != 1:
                continue  # linting by git reference, not a verdict on the app as it is
            app = _app_argument(node.args[0], local, constants)
            if app is None:
                raise CorpusError(f"{where}: cannot tell which app {method.name} lints")
            errors_ = name == "_test_linter_finds_errors"
            out.append(Assertion(method.name, where, app, None, errors_))
        elif name in ("assertTrue", "assertFalse") and launched and node.args:
            arg = node.args[0]
            if isinstance(arg, ast.Attribute) and arg.attr == "nb_warnings":
                warnings = name == "assertTrue"
            elif isinstance(arg, ast.Attribute) and arg.attr == "has_errors":
                errors = name == "assertTrue"
    if launched is not None and errors is not None:
        out.append(Assertion(method.name, where, launched, None, errors, warnings))
    return out


def _data_assertions(method: ast.FunctionDef) -> list[Assertion]:
    """Single-migration verdicts of the data-migration tests that use setUp's linter."""
    for node in ast.walk(method):
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Attribute) and t.attr == "linter" for t in node.targets
        ):
            return []  # a linter with other options: the test asserts the options
    key: tuple[str, str] | None = None
    warnings: bool | None = None
    errors: bool | None = None
    for node in ast.walk(method):
        if (
            isinstance(node, ast.Subscript)
            and isinstance(node.value, ast.Attribute)
            and node.value.attr == "disk_migrations"
            and isinstance(node.slice, ast.Tuple)
        ):
            parts = [e.value for e in node.slice.elts if isinstance(e, ast.Constant)]
            if len(parts) == 2:
                key = (str(parts[0]), str(parts[1]))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            args = node.args
            if node.func.attr == "assertEqual" and len(args) == 2:
                count = next((a.value for a in args if isinstance(a, ast.Constant)), None)
                other = next((a for a in args if isinstance(a, ast.Attribute)), None)
                if other is not None and other.attr == "nb_warnings" and count is not None:
                    warnings = bool(count)
            if (
                node.func.attr in ("assertTrue", "assertFalse")
                and args
                and isinstance(args[0], ast.Attribute)
                and args[0].attr == "has_errors"
            ):
                errors = node.func.attr == "assertTrue"
    if key is None or errors is None:
        return []
    where = f"{DATA_TESTS}:{method.lineno}"
    return [Assertion(method.name, where, key[0], key[1], errors, warnings)]


def assertions(tree: GitTree) -> list[Assertion]:
    constants = _fixture_constants(tree.read(FIXTURES))
    module = ast.parse(tree.read(BACKWARD_TESTS))
    methods = _methods(module, BASE_CLASS) | _methods(module, POSTGRES_CLASS)
    out: list[Assertion] = []
    for name in sorted(methods):
        out += _backward_assertions(methods[name], constants)
    data = _methods(ast.parse(tree.read(DATA_TESTS)), DATA_CLASS)
    for name in sorted(data):
        out += _data_assertions(data[name])
    if not out:
        raise CorpusError(f"no verdict found in {BACKWARD_TESTS} at {tree.commit}")
    return out


def _label_of(tree: GitTree, folder: str) -> tuple[str, str]:
    """The app's label and what INSTALLED_APPS names, from its apps.py when it has one."""
    module = f"tests.test_project.{folder}"
    path = f"{PROJECT}/{folder}/apps.py"
    if not tree.exists(path):
        return folder, module
    for node in ast.parse(tree.read(path)).body:
        if isinstance(node, ast.ClassDef):
            for item in node.body:
                if (
                    isinstance(item, ast.Assign)
                    and isinstance(item.targets[0], ast.Name)
                    and item.targets[0].id == "label"
                    and isinstance(item.value, ast.Constant)
                ):
                    return str(item.value.value), f"{module}.apps.{node.name}"
    return folder, module


def apps(tree: GitTree) -> dict[str, App]:
    """Every app of the test project with migrations, by label."""
    found: dict[str, list[str]] = {}
    for path in tree.files(PROJECT):
        parts = path.split("/")
        if len(parts) == 5 and parts[3] == "migrations" and parts[4][:4].isdigit():
            found.setdefault(parts[2], []).append(parts[4].removesuffix(".py"))
    out = {}
    for folder, names in found.items():
        label, installed = _label_of(tree, folder)
        out[label] = App(folder, label, installed, tuple(sorted(names)))
    return out


def _concerns(codes: tuple[str, ...]) -> frozenset[Concern]:
    return frozenset(c for code in codes for c in LINTER[code])


def cases(
    tree: GitTree, *, checks: dict[tuple[str, str], tuple[str, ...]] | None = None
) -> list[Case]:
    """Every migration some assertion covers, with its verdict, in app order.

    ``checks`` replaces :data:`CHECKS` (a test corpus brings its own).
    """
    checks = CHECKS if checks is None else checks
    project = apps(tree)
    asserted = assertions(tree)
    unknown = sorted({a.app for a in asserted} - set(project))
    if unknown:
        raise CorpusError(f"the tests assert verdicts on apps the project lacks: {unknown}")
    stale = sorted(
        f"{a}.{m}" for a, m in checks if a not in project or m not in project[a].migrations
    )
    if stale:
        raise CorpusError(f"CHECKS names migrations the project lacks: {stale}")
    for assertion in asserted:
        app = project[assertion.app]
        names = [assertion.migration] if assertion.migration else list(app.migrations)
        found = [c for name in names for c in checks.get((app.label, name), ())]
        has_error = any(c in ERROR_CHECKS for c in found)
        has_warning = any(c not in ERROR_CHECKS for c in found)
        if has_error != assertion.errors or (
            assertion.warnings is not None and has_warning != assertion.warnings
        ):
            raise CorpusError(
                f"{assertion.where} ({assertion.test}) asserts errors={assertion.errors}, "
                f"warnings={assertion.warnings} for {assertion.app}"
                f"{'.' + assertion.migration if assertion.migration else ''}, but the "
                f"transcribed checks say {found or 'none'}: update CHECKS in "
                "bench/agreement/linter_corpus.py for this commit."
            )
    covered: dict[tuple[str, str], list[Assertion]] = {}
    for assertion in asserted:
        app = project[assertion.app]
        for name in [assertion.migration] if assertion.migration else app.migrations:
            covered.setdefault((app.label, name), []).append(assertion)
    out = []
    for (label, name), by in sorted(covered.items()):
        codes = checks.get((label, name), ())
        errors = tuple(c for c in codes if c in ERROR_CHECKS)
        warnings = tuple(c for c in codes if c not in ERROR_CHECKS)
        if errors:
            said = "invalid: " + ", ".join(codes)
            peer = PeerVerdict(_concerns(errors), frozenset(), said, by[0].where)
        else:
            said = ("warning: " + ", ".join(warnings)) if warnings else "valid"
            peer = PeerVerdict(_concerns(warnings), LINTER_ERRORS, said, by[0].where)
        tests = ", ".join(sorted({a.test for a in by}))
        peer = dataclasses.replace(peer, where=f"{by[0].where} ({tests})")
        out.append(Case(project[label], name, peer))
    return out
