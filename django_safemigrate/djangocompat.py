"""Everything django_safemigrate needs from Django's internals, in one place.

The analysis renders migrations the way Django's executor does, but faster and without a
database (:mod:`django_safemigrate.sql`, :mod:`django_safemigrate.analysis.sandbox`). For
that it reads and overrides parts of Django that are not public API: private attributes of
the model options, the project state and the schema editor, private methods it replaces,
and method bodies it copies. The rest of the package goes through the names defined here
and never touches a private Django attribute itself.

What each of those parts is expected to do was read in the Django versions listed in
:data:`FINGERPRINTS`; :data:`RELIED_ON` names every such Django function and what to check
again when it changes. ``tests/test_djangocompat.py`` compares the installed Django's
functions with the recorded fingerprints, so a Django release that changes one of them
(or a Django version never checked) fails the tests instead of changing the analysis
silently. To record a new Django version, after checking every function of
:data:`RELIED_ON` against it::

    python -m django_safemigrate.djangocompat --fingerprints

prints the entry to add to :data:`FINGERPRINTS`.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import functools
import hashlib
import importlib
import inspect
import sys
import textwrap
from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import Any

import django
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.state import ProjectState
from django.utils.functional import cached_property

Key = tuple[str, str]

# -- Rendered models (``Options``) ---------------------------------------------------------------


def expire_model_cache(model: Any) -> None:
    """Forget what ``model._meta`` cached: its fields, and the relations pointing at it."""
    model._meta._expire_cache()


def relation_tree_of(model: Any) -> Any | None:
    """The relations pointing at ``model`` as its options cached them, if they did."""
    return model._meta.__dict__.get("_relation_tree")


def restore_relation_tree(model: Any, tree: Any) -> None:
    """Forget what ``model._meta`` cached about the relations pointing at it, but for ``tree``
    (from :func:`relation_tree_of`), which becomes its relation tree again."""
    model._meta._expire_cache(forward=False)
    model._meta.__dict__["_relation_tree"] = tree


# -- Registries (``Apps``) -----------------------------------------------------------------------


def clear_models_cache(apps: Any) -> None:
    """Empty the cache of ``apps.get_models()`` (a ``functools.cache`` on the method)."""
    apps.get_models.cache_clear()


def swappable_lookup_replaced(apps: Any) -> bool:
    """Whether :func:`replace_swappable_lookup` is in place on ``apps``."""
    return "get_swappable_settings_name" in vars(apps)


def replace_swappable_lookup(
    apps: Any, lookup: Callable[[str], str | None], rebuild: Callable[[], None]
) -> None:
    """Make ``apps.get_swappable_settings_name()`` answer from ``lookup``.

    ``Apps.clear_cache()`` empties that method's cache (a ``functools.cache``) by calling its
    ``cache_clear()``: on the replacement, it calls ``rebuild`` instead.
    """
    lookup.cache_clear = rebuild  # type: ignore[attr-defined]
    apps.get_swappable_settings_name = lookup


def restore_swappable_lookup(apps: Any) -> None:
    """Let ``apps`` answer ``get_swappable_settings_name()`` with Django's method again."""
    # Another thread's walk may have taken the replacement away already; Django's method
    # answers the same, only slower.
    with contextlib.suppress(AttributeError):
        del apps.get_swappable_settings_name


# -- Project state (``ProjectState``) ------------------------------------------------------------


def relation_index_built(state: ProjectState) -> bool:
    """Whether ``state`` has built its relation index (``state.relations``) yet.

    Django updates the index as fields change only once it exists; until then, the first
    read of ``relations`` builds it from the model states.
    """
    return getattr(state, "_relations", None) is not None


def copy_relation_index(source: ProjectState, target: ProjectState) -> None:
    """Give ``target`` a copy of ``source``'s relation index, if it has built one, down to the
    per-model dictionaries of fields that changes edit in place (the fields are shared)."""
    index = getattr(source, "_relations", None)
    if index is None:
        return
    copy = _same_kind(index)
    for to, referrers in index.items():
        copy[to] = _same_kind(referrers)
        for by, fields in referrers.items():
            copy[to][by] = _same_kind(fields)
            copy[to][by].update(fields)
    target._relations = copy  # type: ignore[attr-defined]


def _same_kind(mapping: Any) -> Any:
    """An empty mapping of ``mapping``'s kind (Django's index nests ``defaultdict``s)."""
    if isinstance(mapping, defaultdict):
        return defaultdict(mapping.default_factory)
    return type(mapping)()


def reload_models(state: ProjectState, keys: set[Key]) -> None:
    """Re-render the models ``keys`` of ``state``'s registry (and nothing else), in one pass."""
    state._reload(keys)  # type: ignore[attr-defined]


def repoint_relation(field: Any, target: Any, through: Any = None) -> None:
    """Make the rendered relation ``field`` lead to the class ``target`` (and, for a
    many-to-many field, through the class ``through``), as ``resolve_related_class()`` does
    when a relation's model is rendered after it.

    What the field and its reverse side cached from the classes they led to is dropped (it
    is computed again from ``target`` when asked), and the reverse accessor is installed on
    ``target`` by the field's ``contribute_to_related_class()``.
    """
    rel = field.remote_field
    rel.model = target
    if through is not None:
        rel.through = through
    for owner in (field, rel):
        for klass in type(owner).__mro__:
            for name, value in vars(klass).items():
                if isinstance(value, cached_property | functools.cached_property):
                    owner.__dict__.pop(name, None)
    field.do_related_class(target, field.model)


def renamed_together(value: Any, old_name: str, new_name: str) -> Any:
    """An ``index_together``/``unique_together`` option after its field ``old_name`` is renamed,
    in the shape ``ProjectState.rename_field()`` leaves it: a set of tuples from Django 6.1 on
    (as the rest of the state keeps it), a list of lists before."""
    if django.VERSION[:2] >= (6, 1):
        return {tuple(new_name if n == old_name else n for n in together) for together in value}
    return [[new_name if n == old_name else n for n in together] for together in value]


class ProjectStateHooks(ProjectState):
    """A ``ProjectState`` whose private steps a subclass can replace under public names.

    * :meth:`models_to_reload` is ``_find_reload_model()``: which models ``reload_model()``
      re-renders after a change.
    * :meth:`concrete_models_and_proxies` is ``_get_concrete_models_mapping_and_proxy_models()``,
      which building and updating the relation index asks for.
    """

    def models_to_reload(self, app_label: str, model_name: str, delay: bool = False) -> set[Key]:
        return super()._find_reload_model(app_label, model_name, delay)  # type: ignore[misc, no-any-return]

    def concrete_models_and_proxies(self) -> tuple[dict[Key, Key], Any]:
        return super()._get_concrete_models_mapping_and_proxy_models()  # type: ignore[misc, no-any-return]

    def _find_reload_model(self, app_label: str, model_name: str, delay: bool = False) -> set[Key]:
        return self.models_to_reload(app_label, model_name, delay)

    def _get_concrete_models_mapping_and_proxy_models(self) -> tuple[dict[Key, Key], Any]:
        return self.concrete_models_and_proxies()


class ExecutorHooks(MigrationExecutor):
    """A ``MigrationExecutor`` whose private steps a subclass can replace under public names.

    * :meth:`applied_state` is ``_create_project_state()``: the project state of what is
      applied (or an empty one), which ``migrate()`` starts from when given none, and which
      Django's ``migrate`` command builds before the run.
    """

    def applied_state(self, with_applied_migrations: bool = False) -> ProjectState:
        return super()._create_project_state(with_applied_migrations)  # type: ignore[misc, no-any-return]

    def _create_project_state(self, with_applied_migrations: bool = False) -> ProjectState:
        return self.applied_state(with_applied_migrations)


# -- Loaders (``MigrationLoader``) ---------------------------------------------------------------


def check_consistent_history(loader: Any, applied: Any, alias: str) -> None:
    """``MigrationLoader.check_consistent_history()`` on ``applied`` (the recorded
    migrations, already read) instead of a read of its own.

    Raises ``InconsistentMigrationHistory``, worded as Django words it, when an applied
    migration depends on one that is not applied (a squashed migration counts as applied
    when every migration it replaces is; from Django 6.0, also through squashed migrations
    that replace squashed ones: ``MigrationLoader.all_replaced_applied()``).
    """
    from django.db.migrations.exceptions import InconsistentMigrationHistory

    replaced_applied = getattr(loader, "all_replaced_applied", None)
    for key in applied:
        if key not in loader.graph.nodes:
            continue
        for parent in (node.key for node in loader.graph.node_map[key].parents):
            if parent in applied:
                continue
            if replaced_applied is not None:
                if replaced_applied(parent, applied):
                    continue
            else:
                squashed = loader.replacements.get(parent)
                if squashed is not None and all(m in applied for m in squashed.replaces):
                    continue
            raise InconsistentMigrationHistory(
                f"Migration {key[0]}.{key[1]} is applied before its dependency "
                f"{parent[0]}.{parent[1]} on database '{alias}'."
            )


# -- Schema editors ------------------------------------------------------------------------------
#
# With ``collect_sql=True`` a schema editor appends what it would execute to
# ``collected_sql``, and queues statements for its exit in ``deferred_sql`` (which it then
# executes, so with ``collect_sql`` they are collected too).


def collected_mark(editor: Any) -> int:
    """A position in what ``editor`` collected, for :func:`collected_since`."""
    return len(editor.collected_sql)


def collected_since(editor: Any, mark: int) -> list[str]:
    """What ``editor`` collected since ``mark``."""
    return list(editor.collected_sql[mark:])


def drop_collected_since(editor: Any, mark: int) -> None:
    """Forget what ``editor`` collected since ``mark``."""
    del editor.collected_sql[mark:]


def deferred_statements(editor: Any) -> list[Any]:
    """The statements ``editor`` queued for its exit (the live list, not a copy)."""
    return editor.deferred_sql  # type: ignore[no-any-return]


def clear_deferred(editor: Any) -> None:
    """Empty ``editor``'s queue of statements for its exit, so leaving it runs none."""
    editor.deferred_sql = []


def introspected_table(editor: Any, table: str) -> str:
    """The name the database still has for ``table`` while ``editor`` collects SQL.

    With ``collect_sql``, Django 6.1+ records the table renames it collected but did not run
    (``collected_table_renames``: new name to the name in the database) and introspects the
    old name; earlier versions introspect ``table`` as it is.
    """
    if django.VERSION[:2] < (6, 1) or not getattr(editor, "collect_sql", False):
        return table
    renames = getattr(editor, "collected_table_renames", None) or {}
    return str(renames.get(table, table))


def index_name(editor: Any, table: str, columns: list[str], *, suffix: str) -> str:
    """The name ``editor`` gives an index or a constraint on ``columns`` of ``table``."""
    return str(editor._create_index_name(table, columns, suffix=suffix))


class SchemaEditorHooks:
    """A schema editor mixin whose questions about the live schema a subclass answers
    under public names (mixed in before the backend's editor class).

    * :meth:`constraint_names` is ``_constraint_names()``: the names of a table's
      constraints that match, to drop or alter them.
    * :meth:`sequence_name` is PostgreSQL's ``_get_sequence_name()``.
    * :meth:`collation_deterministic` is PostgreSQL's ``_is_collation_deterministic()``.
    """

    def constraint_names(  # noqa: PLR0917  # Django's signature
        self,
        model: Any,
        column_names: Any = None,
        unique: Any = None,
        primary_key: Any = None,
        index: Any = None,
        foreign_key: Any = None,
        check: Any = None,
        type_: Any = None,
        exclude: Any = None,
    ) -> list[str]:
        raise NotImplementedError

    def sequence_name(self, table: str, column: str) -> str:
        raise NotImplementedError

    def collation_deterministic(self, collation_name: str) -> bool:
        raise NotImplementedError

    def _constraint_names(  # noqa: PLR0917  # Django's signature
        self,
        model: Any,
        column_names: Any = None,
        unique: Any = None,
        primary_key: Any = None,
        index: Any = None,
        foreign_key: Any = None,
        check: Any = None,
        type_: Any = None,
        exclude: Any = None,
    ) -> list[str]:
        return self.constraint_names(
            model, column_names, unique, primary_key, index, foreign_key, check, type_, exclude
        )

    def _get_sequence_name(self, table: str, column: str) -> str:
        return self.sequence_name(table, column)

    def _is_collation_deterministic(self, collation_name: str) -> bool:
        return self.collation_deterministic(collation_name)


# -- Connections ---------------------------------------------------------------------------------


def nodb_cursor(connection: Any) -> Any:
    """A cursor on the server without the configured database (a context manager), as
    Django's test runner uses to create test databases."""
    return connection._nodb_cursor()


def proxied_alias(proxy: Any) -> str:
    """The alias of the connection ``django.db.connection`` (a ``ConnectionProxy``) stands for."""
    return str(proxy._alias)


def set_server_version(connection: Any, version: int) -> None:
    """Make a PostgreSQL ``connection`` answer ``version`` (``150004`` for 15.4) without
    asking the server (``pg_version`` is cached on the instance once read)."""
    connection.__dict__["pg_version"] = version


# -- What the code above and its callers rely on -------------------------------------------------

_STATE = "django.db.migrations.state:"
_OPTIONS = "django.db.models.options:Options"
_BASE_EDITOR = "django.db.backends.base.schema:BaseDatabaseSchemaEditor"
_PG_EDITOR = "django.db.backends.postgresql.schema:DatabaseSchemaEditor"

#: Every Django function whose behaviour the package copies or relies on, and what to check
#: again (and where) when it changes.
RELIED_ON: dict[str, str] = {
    f"{_STATE}ProjectState.alter_field": (
        "IncrementalState.alter_field (sql.py) is a copy of its body without the "
        "field_is_referenced() scan: bring the copy in line."
    ),
    f"{_STATE}ProjectState.rename_field": (
        "IncrementalState.rename_field (sql.py) is a copy of its body that finds the "
        "referencing fields through the relation index, and renamed_together() follows the "
        "shape it gives the *_together options: bring the copy in line."
    ),
    f"{_STATE}ProjectState.reload_model": (
        "it must still ask _find_reload_model() which models to re-render "
        "(ProjectStateHooks.models_to_reload, IncrementalState.models_to_reload in sql.py)."
    ),
    f"{_STATE}ProjectState._find_reload_model": (
        "IncrementalState.models_to_reload (sql.py) replaces its policy: the models it "
        "re-renders must still be the ones the schema editor's SQL depends on."
    ),
    f"{_STATE}ProjectState._reload": (
        "re-rendering must still go through StateApps.register_model/unregister_model and "
        "clear_cache (IncrementalApps in sql.py tracks the changed classes there); "
        "reload_models() calls it with a set of model keys."
    ),
    f"{_STATE}ProjectState._get_concrete_models_mapping_and_proxy_models": (
        "IncrementalState.concrete_models_and_proxies (sql.py) caches its answer until a "
        "model is added, removed or renamed: it must depend on nothing else."
    ),
    f"{_STATE}ProjectState.rename_model": (
        "IncrementalState.rename_model (sql.py) restores the old class's relation tree "
        "around it, and drops the cached concrete-model mapping."
    ),
    f"{_STATE}ProjectState.add_model": (
        "IncrementalState.add_model (sql.py) drops the cached concrete-model mapping."
    ),
    f"{_STATE}ProjectState.remove_model": (
        "IncrementalState.remove_model (sql.py) drops the cached concrete-model mapping."
    ),
    f"{_STATE}ProjectState.resolve_model_field_relations": (
        "the copies of alter_field/rename_field (sql.py) update the relation index with it."
    ),
    f"{_STATE}ProjectState.relations": (
        "relation_index_built() and copy_relation_index() read its private _relations "
        "(to model, by model, field name: field), and IncrementalState reads who points at "
        "a model from it."
    ),
    f"{_STATE}StateApps.clone": (
        "IncrementalApps.clone (sql.py) is a shallow copy of what it copies: bring it in line."
    ),
    f"{_STATE}StateApps.register_model": (
        "IncrementalApps.register_model (sql.py) tracks the classes it replaces."
    ),
    f"{_STATE}StateApps.unregister_model": (
        "IncrementalApps.unregister_model (sql.py) tracks the classes it removes."
    ),
    "django.apps.registry:Apps.clear_cache": (
        "IncrementalApps.clear_cache (sql.py) does the same but expires only the models a "
        "change can outdate and keeps get_swappable_settings_name's cache; "
        "replace_swappable_lookup() relies on it calling that method's cache_clear()."
    ),
    "django.apps.registry:Apps.get_swappable_settings_name": (
        "swappable_names_at_once (sql.py) answers it from a table built in one pass, "
        "in the same order: bring the table in line."
    ),
    f"{_OPTIONS}._expire_cache": (
        "expire_model_cache() and restore_relation_tree() call it; "
        "IncrementalApps._outdated (sql.py) decides which models need it."
    ),
    f"{_OPTIONS}._relation_tree": (
        "relation_tree_of()/restore_relation_tree() read and set its cached value."
    ),
    f"{_OPTIONS}._populate_directed_relation_graph": (
        "IncrementalApps._outdated (sql.py) assumes relation trees are keyed by the label "
        "of each relation's concrete target."
    ),
    f"{_OPTIONS}._get_fields": (
        "IncrementalApps._outdated and _tree_labels (sql.py) assume a model's reverse "
        "relations come from its own and its ancestors' relation trees."
    ),
    f"{_BASE_EDITOR}.__init__": (
        "collected_sql and deferred_sql must still be the lists the collect/deferred "
        "helpers read, and collected_table_renames (6.1+) what introspected_table() reads."
    ),
    f"{_BASE_EDITOR}.__exit__": (
        "it must still run deferred_sql on exit (clear_deferred() empties it first)."
    ),
    f"{_BASE_EDITOR}.execute": (
        "with collect_sql it must still append to collected_sql, not run anything."
    ),
    f"{_BASE_EDITOR}._create_index_name": ("index_name() calls it with the same arguments."),
    f"{_BASE_EDITOR}._constraint_names": (
        "SchemaEditorHooks overrides it with this signature (CatalogEditor.constraint_names "
        "in analysis/catalog.py answers it, for the table introspected_table() names)."
    ),
    f"{_PG_EDITOR}._get_sequence_name": (
        "SchemaEditorHooks overrides it (CatalogEditor.sequence_name in analysis/catalog.py)."
    ),
    f"{_PG_EDITOR}._is_collation_deterministic": (
        "SchemaEditorHooks overrides it "
        "(CatalogEditor.collation_deterministic in analysis/catalog.py)."
    ),
    "django.db.backends.postgresql.base:DatabaseWrapper._nodb_cursor": (
        "nodb_cursor() calls it (schema/ephemeral.py creates and drops databases with it)."
    ),
    "django.db.backends.postgresql.base:DatabaseWrapper.pg_version": (
        "set_server_version() sets its cached value on the instance."
    ),
    "django.utils.connection:ConnectionProxy.__init__": (
        "proxied_alias() reads the _alias it keeps."
    ),
    "django.db.migrations.utils:field_references": ("the copy of rename_field (sql.py) calls it."),
    "django.db.models.fields.related:RelatedField.contribute_to_class": (
        "repoint_relation() does what its resolve_related_class() does for a relation "
        "already resolved: sets the rel's model and calls do_related_class()."
    ),
    "django.db.models.fields.related:RelatedField.do_related_class": (
        "repoint_relation() calls it to install the reverse accessor on the new target."
    ),
    "django.db.models.fields.related:ForeignObject.contribute_to_related_class": (
        "repoint_relation() relies on it only setting the reverse accessor (and the "
        "limit_choices_to lookups) on the target, nothing cached elsewhere."
    ),
    "django.db.models.fields.related:ForeignKey.contribute_to_related_class": (
        "as ForeignObject's; it fills the rel's field_name only when unset."
    ),
    "django.db.models.fields.related:ManyToManyField.contribute_to_related_class": (
        "repoint_relation() relies on it setting the reverse descriptor and the m2m name "
        "partials from the rel, nothing cached elsewhere."
    ),
    "django.db.migrations.migration:Migration.apply": (
        "apply_operations (execution/walk.py) is a copy of its loop without collect_sql, "
        "with state_before() for the copy of the state: bring the copy in line."
    ),
    "django.db.migrations.executor:MigrationExecutor.apply_migration": (
        "it must still run the operations through migration.apply(state, schema_editor), "
        "which walk.applied_by() replaces for one migration."
    ),
    "django.db.migrations.executor:MigrationExecutor._create_project_state": (
        "LedgerExecutor.applied_state (execution/executor.py, through ExecutorHooks) is a "
        "copy of it building an IncrementalState: bring the copy in line."
    ),
    "django.db.migrations.loader:MigrationLoader.check_consistent_history": (
        "check_consistent_history() here is a copy of its body that takes the applied "
        "migrations a governed run read once (execution/recorded.py): bring the copy in line."
    ),
    "django.db.migrations.recorder:MigrationRecorder.applied_migrations": (
        "RunRecorder (execution/recorded.py) keeps its answer until the run writes: it must "
        "still read django_migrations only, and record_applied, record_unapplied and flush "
        "must still be the recorder's only writes."
    ),
    "django.db.migrations.executor:MigrationExecutor.migrate": (
        "LedgerExecutor.migrate hands it an IncrementalState, which it must pass on to "
        "_migrate_all_forwards and apply_migration unchanged."
    ),
    "django.db.migrations.operations.special:RunPython.database_forwards": (
        "it must still give the code from_state.apps after clear_delayed_apps_cache(), "
        "which a settled IncrementalState makes a no-op (execution/walk.py)."
    ),
}


def resolve(name: str) -> Any:
    """The function or method named ``module:qualified.name`` (the function behind a property
    or a cached property), or ``None`` where this Django has no such thing."""
    module, _, qualified = name.partition(":")
    found: Any = importlib.import_module(module)
    for attribute in qualified.split("."):
        found = vars(found).get(attribute)
        if found is None:
            return None
    return _function_of(found)


def short_name(name: str) -> str:
    """How :data:`FINGERPRINTS` names a function of :data:`RELIED_ON`: without its module."""
    return name.partition(":")[2]


def _function_of(found: Any) -> Any:
    if isinstance(found, property):
        return found.fget
    if isinstance(found, staticmethod | classmethod):
        return found.__func__
    # Django's cached_property keeps the function as real_func, functools' as func.
    for attribute in ("real_func", "func"):
        function = getattr(found, attribute, None)
        if inspect.isfunction(function):
            return function
    return inspect.unwrap(found)


def fingerprint(function: Any) -> str | None:
    """A digest of what ``function`` does: its syntax tree without its docstring, comments
    or layout, written out the same way on every Python version (``None`` when missing)."""
    if function is None:
        return None
    return fingerprint_source(inspect.getsource(function))


def fingerprint_source(source: str) -> str:
    """The fingerprint of a function's source (see :func:`fingerprint`)."""
    tree = ast.parse(textwrap.dedent(source))
    return hashlib.sha256(_canonical(tree).encode()).hexdigest()[:16]


#: Fields that newer Pythons add to the syntax tree, or that do not change behaviour.
_IGNORED_FIELDS = frozenset({"type_comment", "type_params", "kind"})


def _canonical(node: Any) -> str:
    if isinstance(node, ast.AST):
        body = getattr(node, "body", None)
        if (
            isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            body = body[1:] or [ast.Pass()]
        parts = []
        for field, found in ast.iter_fields(node):
            value = body if field == "body" and body is not None else found
            if field in _IGNORED_FIELDS or value is None or value == []:
                continue
            parts.append(f"{field}={_canonical(value)}")
        return f"{type(node).__name__}({', '.join(parts)})"
    if isinstance(node, list):
        return "[" + ", ".join(_canonical(item) for item in node) + "]"
    return repr(node)


def installed_fingerprints() -> dict[str, str | None]:
    """The fingerprint of every function of :data:`RELIED_ON` in the installed Django."""
    return {short_name(name): fingerprint(resolve(name)) for name in RELIED_ON}


def django_minor() -> str:
    """The installed Django's minor version, as :data:`FINGERPRINTS` keys it (``"5.2"``)."""
    return "{}.{}".format(*django.VERSION[:2])


def differences(minor: str | None = None) -> Iterator[str]:
    """One paragraph per function of :data:`RELIED_ON` whose installed version differs from
    the one recorded for the installed Django's minor version."""
    minor = minor or django_minor()
    recorded = FINGERPRINTS[minor]
    installed = installed_fingerprints()
    for name, reason in RELIED_ON.items():
        found = installed[short_name(name)]
        expected = recorded.get(short_name(name), "(not recorded)")
        if found != expected:
            state = "is missing" if found is None else "differs"
            yield (
                f"Django {minor}'s {name} {state} from the version django_safemigrate was "
                f"written against (fingerprint {found}, recorded {expected}). Re-check: "
                f"{reason} Then record the new fingerprints in "
                f"django_safemigrate/djangocompat.py (python -m django_safemigrate.djangocompat "
                f"--fingerprints)."
            )


def unknown_version_message(minor: str) -> str:
    return (
        f"Django {minor} is not a version django_safemigrate's use of Django internals was "
        f"checked against (recorded: {', '.join(FINGERPRINTS)}). Check every function listed "
        f"in RELIED_ON (django_safemigrate/djangocompat.py) against Django {minor}, adapt "
        f"the code that relies on it, then add the output of "
        f"`python -m django_safemigrate.djangocompat --fingerprints` to FINGERPRINTS."
    )


def _fingerprints_entry() -> str:
    lines = [f'    "{django_minor()}": {{']
    for name, found in installed_fingerprints().items():
        value = "None" if found is None else f'"{found}"'
        lines.append(f'        "{name}": {value},')
    lines.append("    },")
    return "\n".join(lines)


def main(argv: list[str] | None = None, write: Callable[[str], Any] = print) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m django_safemigrate.djangocompat",
        description="Fingerprints of the Django internals django_safemigrate relies on.",
    )
    parser.add_argument(
        "--fingerprints",
        action="store_true",
        help="print the FINGERPRINTS entry for the installed Django",
    )
    args = parser.parse_args(argv)
    if args.fingerprints:
        write(_fingerprints_entry())
        return 0
    minor = django_minor()
    if minor not in FINGERPRINTS:
        write(unknown_version_message(minor))
        return 1
    found = list(differences(minor))
    for paragraph in found:
        write(paragraph)
    if not found:
        write(f"Django {minor}: every relied-on function is as recorded.")
    return 1 if found else 0


#: Per Django minor version, the fingerprint of every function of :data:`RELIED_ON`
#: (``None``: that Django has no such function), from ``--fingerprints``.
FINGERPRINTS: dict[str, dict[str, str | None]] = {
    "5.2": {
        "ProjectState.alter_field": "f7597898afb8d622",
        "ProjectState.rename_field": "f461ee63dc9a47a3",
        "ProjectState.reload_model": "dbe5d447ddf8a6a3",
        "ProjectState._find_reload_model": "74e51c0d83cc7434",
        "ProjectState._reload": "038ce36a42640c25",
        "ProjectState._get_concrete_models_mapping_and_proxy_models": "392daaa59ef26902",
        "ProjectState.rename_model": "10d795ce095faec6",
        "ProjectState.add_model": "9d944d03d268afd9",
        "ProjectState.remove_model": "c0ceb43e496b0bc7",
        "ProjectState.resolve_model_field_relations": "00219bc65cf29dbc",
        "ProjectState.relations": "001e4e960a45a274",
        "StateApps.clone": "33794121b75da11d",
        "StateApps.register_model": "50b605a458fc9b7b",
        "StateApps.unregister_model": "748d25dc56b8914c",
        "Apps.clear_cache": "a787ae67d9a4e930",
        "Apps.get_swappable_settings_name": "1cd8b99838cd6dac",
        "Options._expire_cache": "5300e256cd7fe4a8",
        "Options._relation_tree": "3849ae3afe698c9c",
        "Options._populate_directed_relation_graph": "70bd9a3a79ae3939",
        "Options._get_fields": "57f342309ccf5809",
        "BaseDatabaseSchemaEditor.__init__": "96af430bffd493d2",
        "BaseDatabaseSchemaEditor.__exit__": "ab3abd99d2d4f3f2",
        "BaseDatabaseSchemaEditor.execute": "98694c8f6d0c80a3",
        "BaseDatabaseSchemaEditor._create_index_name": "018351074dd1bae6",
        "BaseDatabaseSchemaEditor._constraint_names": "f7b691f7e82ff32e",
        "DatabaseSchemaEditor._get_sequence_name": "74d712b011a86f7e",
        "DatabaseSchemaEditor._is_collation_deterministic": "c5a1de86d442c65e",
        "DatabaseWrapper._nodb_cursor": "3cd32685f13c6f32",
        "DatabaseWrapper.pg_version": "a6bf38c3aa0609e8",
        "ConnectionProxy.__init__": "ab1e46e609198fac",
        "field_references": "0523ff432476dabf",
        "RelatedField.contribute_to_class": "849c4d169d29a22c",
        "RelatedField.do_related_class": "39588f601ff11651",
        "ForeignObject.contribute_to_related_class": "dba19cc36fc03ed4",
        "ForeignKey.contribute_to_related_class": "5ae6e5d20f061fca",
        "ManyToManyField.contribute_to_related_class": "6dcbe5e73a4a41d2",
        "Migration.apply": "3d9f7a11f5e43f0f",
        "MigrationExecutor.apply_migration": "29815acf7e1e1efc",
        "MigrationExecutor._create_project_state": "2a7660e23a169c12",
        "MigrationLoader.check_consistent_history": "1adf32f23f7c9e17",
        "MigrationRecorder.applied_migrations": "3dd14186d9093380",
        "MigrationExecutor.migrate": "a6b1316bd804bf5b",
        "RunPython.database_forwards": "3ce3c9b08ebd5d58",
    },
    "6.0": {
        "ProjectState.alter_field": "f7597898afb8d622",
        "ProjectState.rename_field": "f461ee63dc9a47a3",
        "ProjectState.reload_model": "dbe5d447ddf8a6a3",
        "ProjectState._find_reload_model": "74e51c0d83cc7434",
        "ProjectState._reload": "038ce36a42640c25",
        "ProjectState._get_concrete_models_mapping_and_proxy_models": "392daaa59ef26902",
        "ProjectState.rename_model": "10d795ce095faec6",
        "ProjectState.add_model": "9d944d03d268afd9",
        "ProjectState.remove_model": "c0ceb43e496b0bc7",
        "ProjectState.resolve_model_field_relations": "00219bc65cf29dbc",
        "ProjectState.relations": "001e4e960a45a274",
        "StateApps.clone": "33794121b75da11d",
        "StateApps.register_model": "50b605a458fc9b7b",
        "StateApps.unregister_model": "748d25dc56b8914c",
        "Apps.clear_cache": "a787ae67d9a4e930",
        "Apps.get_swappable_settings_name": "1cd8b99838cd6dac",
        "Options._expire_cache": "5300e256cd7fe4a8",
        "Options._relation_tree": "3849ae3afe698c9c",
        "Options._populate_directed_relation_graph": "70bd9a3a79ae3939",
        "Options._get_fields": "57f342309ccf5809",
        "BaseDatabaseSchemaEditor.__init__": "96af430bffd493d2",
        "BaseDatabaseSchemaEditor.__exit__": "ab3abd99d2d4f3f2",
        "BaseDatabaseSchemaEditor.execute": "98694c8f6d0c80a3",
        "BaseDatabaseSchemaEditor._create_index_name": "018351074dd1bae6",
        "BaseDatabaseSchemaEditor._constraint_names": "f7b691f7e82ff32e",
        "DatabaseSchemaEditor._get_sequence_name": "74d712b011a86f7e",
        "DatabaseSchemaEditor._is_collation_deterministic": "c5a1de86d442c65e",
        "DatabaseWrapper._nodb_cursor": "3cd32685f13c6f32",
        "DatabaseWrapper.pg_version": "a6bf38c3aa0609e8",
        "ConnectionProxy.__init__": "ab1e46e609198fac",
        "field_references": "0523ff432476dabf",
        "RelatedField.contribute_to_class": "849c4d169d29a22c",
        "RelatedField.do_related_class": "39588f601ff11651",
        "ForeignObject.contribute_to_related_class": "dba19cc36fc03ed4",
        "ForeignKey.contribute_to_related_class": "5ae6e5d20f061fca",
        "ManyToManyField.contribute_to_related_class": "6dcbe5e73a4a41d2",
        "Migration.apply": "3d9f7a11f5e43f0f",
        "MigrationExecutor.apply_migration": "489789b6a1aa9c21",
        "MigrationExecutor._create_project_state": "2a7660e23a169c12",
        "MigrationLoader.check_consistent_history": "2d19b4693e751cc1",
        "MigrationRecorder.applied_migrations": "3dd14186d9093380",
        "MigrationExecutor.migrate": "a6b1316bd804bf5b",
        "RunPython.database_forwards": "3ce3c9b08ebd5d58",
    },
    "6.1": {
        "ProjectState.alter_field": "f7597898afb8d622",
        "ProjectState.rename_field": "e552f802bdbfc2a5",
        "ProjectState.reload_model": "dbe5d447ddf8a6a3",
        "ProjectState._find_reload_model": "74e51c0d83cc7434",
        "ProjectState._reload": "038ce36a42640c25",
        "ProjectState._get_concrete_models_mapping_and_proxy_models": "392daaa59ef26902",
        "ProjectState.rename_model": "10d795ce095faec6",
        "ProjectState.add_model": "9d944d03d268afd9",
        "ProjectState.remove_model": "c0ceb43e496b0bc7",
        "ProjectState.resolve_model_field_relations": "00219bc65cf29dbc",
        "ProjectState.relations": "001e4e960a45a274",
        "StateApps.clone": "33794121b75da11d",
        "StateApps.register_model": "50b605a458fc9b7b",
        "StateApps.unregister_model": "748d25dc56b8914c",
        "Apps.clear_cache": "a787ae67d9a4e930",
        "Apps.get_swappable_settings_name": "1cd8b99838cd6dac",
        "Options._expire_cache": "5300e256cd7fe4a8",
        "Options._relation_tree": "3849ae3afe698c9c",
        "Options._populate_directed_relation_graph": "70bd9a3a79ae3939",
        "Options._get_fields": "57f342309ccf5809",
        "BaseDatabaseSchemaEditor.__init__": "4405c4be5cac76ab",
        "BaseDatabaseSchemaEditor.__exit__": "ab3abd99d2d4f3f2",
        "BaseDatabaseSchemaEditor.execute": "98694c8f6d0c80a3",
        "BaseDatabaseSchemaEditor._create_index_name": "018351074dd1bae6",
        "BaseDatabaseSchemaEditor._constraint_names": "c8ad13e49ff67d01",
        "DatabaseSchemaEditor._get_sequence_name": "74d712b011a86f7e",
        "DatabaseSchemaEditor._is_collation_deterministic": "c5a1de86d442c65e",
        "DatabaseWrapper._nodb_cursor": "3cd32685f13c6f32",
        "DatabaseWrapper.pg_version": "a6bf38c3aa0609e8",
        "ConnectionProxy.__init__": "ab1e46e609198fac",
        "field_references": "0523ff432476dabf",
        "RelatedField.contribute_to_class": "849c4d169d29a22c",
        "RelatedField.do_related_class": "39588f601ff11651",
        "ForeignObject.contribute_to_related_class": "dba19cc36fc03ed4",
        "ForeignKey.contribute_to_related_class": "5ae6e5d20f061fca",
        "ManyToManyField.contribute_to_related_class": "6dcbe5e73a4a41d2",
        "Migration.apply": "3d9f7a11f5e43f0f",
        "MigrationExecutor.apply_migration": "489789b6a1aa9c21",
        "MigrationExecutor._create_project_state": "2a7660e23a169c12",
        "MigrationLoader.check_consistent_history": "2d19b4693e751cc1",
        "MigrationRecorder.applied_migrations": "3dd14186d9093380",
        "MigrationExecutor.migrate": "a6b1316bd804bf5b",
        "RunPython.database_forwards": "3ce3c9b08ebd5d58",
    },
}


if __name__ == "__main__":
    sys.exit(main())
