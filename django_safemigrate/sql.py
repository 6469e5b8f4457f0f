"""The SQL a migration will really run, per operation, parsed by PostgreSQL's parser.

Django renders an operation's SQL for a connection without executing it
(``schema_editor(collect_sql=True)``, as ``sqlmigrate`` does). That SQL comes
from the configured backend, so a backend that rewrites DDL
(django-pg-zero-downtime-migrations) is judged by what it emits. Statements
that an operation queues for the end of the migration (``deferred_sql``:
indexes and foreign keys of new tables, for example) are attributed back to the
operation that queued them.

Every statement, and every statement inside ``RunSQL``, is parsed with pglast,
which wraps PostgreSQL's own parser; rules judge parse trees, never text.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
from collections import defaultdict
from collections.abc import Iterator
from typing import Any, Protocol

from django.core.exceptions import FieldDoesNotExist
from django.db import models
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.migrations import Migration
from django.db.migrations.operations.base import Operation
from django.db.migrations.state import AppConfigStub, ProjectState, StateApps
from django.db.migrations.utils import field_references
from django.db.models.fields import NOT_PROVIDED
from django.utils.functional import cached_property

from django_safemigrate import djangocompat

Key = tuple[str, str]
ModelClass = type[models.Model]


@dataclasses.dataclass(frozen=True)
class Statement:
    """One SQL statement and its parse tree (``None`` when PostgreSQL cannot parse it)."""

    sql: str
    tree: Any | None
    error: str | None = None
    #: True when the statement came from ``RunSQL`` (written by hand) rather than
    #: from the schema editor.
    handwritten: bool = False


@dataclasses.dataclass(frozen=True)
class OperationSQL:
    """What one operation will run on the database."""

    index: int
    operation: Operation
    statements: tuple[Statement, ...]
    #: ``False`` for operations that run Python (``RunPython``): no SQL to show.
    reduces_to_sql: bool = True
    #: Why the SQL could not be rendered (for example, it needs the live schema).
    render_error: str | None = None
    #: The project state just before this operation (``None`` for ``RunPython``).
    from_state: ProjectState | None = dataclasses.field(default=None, compare=False, repr=False)
    #: What the operation tried to run on the database while it was being rendered, which
    #: the analysis refused (see :mod:`django_safemigrate.analysis.sandbox`).
    refused: tuple[str, ...] = ()


class RenderGuard(Protocol):
    """Watches what operations do to the database while their SQL is rendered."""

    def mark(self) -> int:
        """A position to ask :meth:`refused_since` about."""

    def refused_since(self, mark: int) -> tuple[str, ...]:
        """What was refused since ``mark``, each as a short description."""


def statement_text(sql: Any) -> str:
    """The SQL text of what a schema editor passes to ``execute()``.

    Usually a string or Django's ``Statement``; a backend may pass objects of its own
    that only its ``execute()`` knows how to run: django-pg-zero-downtime-migrations
    sends lists of statements (``MultiStatementSQL``) and statements that carry their
    lock (``PGLock``), as such or as the template of a ``Statement``, and ``str()`` of
    some of them fails. Their text is read from what they hold.
    """
    from django.db.backends.ddl_references import Statement as DjangoStatement

    if isinstance(sql, DjangoStatement) and not isinstance(sql.template, str):
        sql = sql.template % sql.parts
    if isinstance(sql, str):
        return sql
    if isinstance(sql, list | tuple):
        return ";\n".join(statement_text(item).rstrip().rstrip(";") for item in sql)
    held = getattr(sql, "sql", None)
    if held is not None and held is not sql:
        return statement_text(held)
    return str(sql)


def parse(sql: str, *, handwritten: bool = False) -> list[Statement]:
    """Split ``sql`` into statements with their parse trees.

    SQL that PostgreSQL cannot parse becomes one statement with ``tree=None`` and
    the parser's message, so a rule can report it instead of the analysis crashing.
    """
    from pglast import parse_sql
    from pglast.parser import ParseError

    text = sql.strip()
    if not text:
        return []
    try:
        raw = parse_sql(text)
    except ParseError as exc:
        return [Statement(text, None, str(exc), handwritten)]
    statements = []
    encoded = text.encode()
    for raw_stmt in raw:
        start = raw_stmt.stmt_location or 0
        length = raw_stmt.stmt_len or (len(encoded) - start)
        piece = encoded[start : start + length].decode(errors="replace").strip()
        statements.append(Statement(piece, raw_stmt.stmt, None, handwritten))
    return statements


def _runsql_statements(operation: Any) -> list[Statement]:
    """The forward SQL of a ``RunSQL``, which may be a string, a list, or (sql, params) pairs.

    Parameters are merged in as SQL literals (as Django's PostgreSQL schema editor
    does before executing), so parameterised statements parse like the real ones.
    """
    from psycopg.sql import quote

    sqls = operation.sql
    if isinstance(sqls, str):
        sqls = [sqls]
    statements: list[Statement] = []
    for item in sqls:
        if isinstance(item, list | tuple):
            text, params = item[0], item[1] if len(item) > 1 else None
        else:
            text, params = item, None
        if text is None:
            continue
        text = str(text)
        if params:
            try:
                if isinstance(params, dict):
                    text = text % {k: quote(v) for k, v in params.items()}
                else:
                    text = text % tuple(quote(v) for v in params)
            except (TypeError, ValueError, KeyError):
                pass  # leave the placeholders; the parser will say what is wrong
        statements.extend(parse(text, handwritten=True))
    return statements


def render_migration(
    migration: Migration,
    state: ProjectState,
    connection: BaseDatabaseWrapper,
    guard: RenderGuard | None = None,
) -> tuple[list[OperationSQL], ProjectState]:
    """Render ``migration``'s SQL operation by operation, starting from ``state``.

    Returns the per-operation SQL and the state after the migration (``state``
    is advanced in place, like Django's executor does, so a caller walking a
    whole plan renders each model once instead of once per migration).

    With a ``guard`` (the analysis's sandbox), what each operation tried to run and
    was refused is kept on its result.
    """
    from django.db.migrations.operations.special import RunSQL, SeparateDatabaseAndState

    results: list[OperationSQL] = []
    owners: dict[int, int] = {}  # id(deferred statement) -> index of the operation
    with connection.schema_editor(collect_sql=True, atomic=False) as editor:
        for index, operation in enumerate(migration.operations):
            mark = guard.mark() if guard is not None else 0
            if not operation.reduces_to_sql:
                operation.state_forwards(migration.app_label, state)
                refused = guard.refused_since(mark) if guard is not None else ()
                results.append(
                    OperationSQL(index, operation, (), reduces_to_sql=False, refused=refused)
                )
                continue
            before = djangocompat.collected_mark(editor)
            old_state = state_before(operation, migration.app_label, state)
            operation.state_forwards(migration.app_label, state)
            error = None
            try:
                if isinstance(operation, RunSQL):
                    # Parse what the author wrote: Django would only split it on
                    # semicolons, which breaks on dollar-quoted bodies.
                    statements = _runsql_statements(operation)
                elif isinstance(operation, SeparateDatabaseAndState):
                    statements = _database_side(migration.app_label, operation, editor, old_state)
                else:
                    operation.database_forwards(migration.app_label, editor, old_state, state)
                    statements = []
                    for text in djangocompat.collected_since(editor, before):
                        statements.extend(parse(text))
            except Exception as exc:  # one operation must not stop the analysis
                statements = []
                error = _render_error(exc)
            djangocompat.drop_collected_since(editor, before)
            for deferred in djangocompat.deferred_statements(editor):
                owners.setdefault(id(deferred), index)
            refused = guard.refused_since(mark) if guard is not None else ()
            results.append(
                OperationSQL(
                    index, operation, tuple(statements), True, error, old_state, refused=refused
                )
            )
        _render_deferred(editor, owners, results, guard)
    return results, state


def _render_deferred(
    editor: Any, owners: dict[int, int], results: list[OperationSQL], guard: RenderGuard | None
) -> None:
    """Render the statements the editor queued for its exit, each with the operation that
    queued it (``owners``: id of the statement to index of the operation).

    They go through the editor's own execute(), as on exit, because a backend may queue
    objects that only it can render (django-pg-zero-downtime-migrations queues lock-aware
    statement objects). A statement that cannot be rendered leaves its operation's SQL
    incomplete: the operation is then reported as not rendered, not judged on part of it.
    """
    for deferred in djangocompat.deferred_statements(editor):
        owner = owners.get(id(deferred), len(results) - 1)
        before = djangocompat.collected_mark(editor)
        mark = guard.mark() if guard is not None else 0
        error = None
        try:
            editor.execute(deferred, None)
        except Exception as exc:  # one statement must not stop the analysis
            error = _render_error(exc)
        statements: list[Statement] = []
        for text in djangocompat.collected_since(editor, before):
            statements.extend(parse(text))
        djangocompat.drop_collected_since(editor, before)
        current = results[owner]
        results[owner] = dataclasses.replace(
            current,
            statements=current.statements + tuple(statements),
            render_error=current.render_error or error,
            refused=current.refused + (guard.refused_since(mark) if guard is not None else ()),
        )
    djangocompat.clear_deferred(editor)


# -- Advancing the project state cheaply -------------------------------------------------------
#
# Judging SQL needs the rendered models (``state.apps``) before and after every operation.
# Django's executor gets them by cloning the whole state before each operation and letting
# ``state_forwards`` re-render the changed model together with every model related to it,
# recursively: on a project whose models are connected through foreign keys (every model
# pointing at the user model is enough) that is all of them. Both costs grow with the size
# of the project, so a history of N migrations costs O(N^2): on a generated project of
# 1,000 migrations, 50 s out of 51 (bench/speed.py). The two pieces below keep each
# operation's cost proportional to what it touches.


class IncrementalState(djangocompat.ProjectStateHooks):
    """A ``ProjectState`` that re-renders a changed model and only what points at it.

    After ``state_forwards`` changes a model, its rendered class is replaced; the classes
    that point at it (foreign keys, many-to-many fields and their through models, proxy and
    child classes) are re-rendered so they point at the new class, and so are the ones
    pointing at those when the pointing goes through a primary key (multi-table inheritance,
    a one-to-one primary key), because their column follows the referenced key. Models the
    changed one points at keep their classes: rendering the new class attaches its reverse
    relations to them, and the registry rebuilds its relation tree from the registered
    classes anyway. Django's own policy (``_find_reload_model``, which
    :meth:`models_to_reload` replaces) also re-renders everything
    reachable in either direction, which no SQL the schema editor writes depends on.

    Who points at a model comes from the state's relation index (``relations``, which
    Django keeps up to date as operations change fields), not from the rendered classes:
    asking a class for its reverse relations rebuilds the registry's relation tree, a scan
    of every model, after each change.
    """

    def models_to_reload(self, app_label: str, model_name: str, delay: bool = False) -> set[Key]:
        if delay:
            self.is_delayed = True
        key = (app_label, model_name)
        reload = {key}
        try:
            model = self.apps.get_model(app_label, model_name)
        except LookupError:
            return reload  # a new model: nothing points at it yet
        reload |= _subclass_keys(model)  # proxies and multi-table children
        if not self._referrers_affected(key, model):
            return reload
        # The schema editor will ask the class being replaced for the relations pointing at
        # it (to alter their columns too). A class answers from the registry's relation tree,
        # which has no entry for a class no longer registered: read it while it still is.
        _keep_reverse_relations(model)
        pending = [key]
        seen: set[Key] = set()
        while pending:
            target = pending.pop()
            if target in seen:
                continue
            seen.add(target)
            for referrer, fields in self.relations.get(target, {}).items():
                if not fields:
                    # Django's rename_field leaves empty entries behind in the index.
                    continue
                reload.add(referrer)
                if _primary_key_is_relation(self.models.get(referrer)):
                    pending.append(referrer)
        # A referrer re-rendered takes its proxies and children along, as the changed model
        # does: they are subclasses of its class.
        for referrer in list(reload):
            if referrer != key:
                with contextlib.suppress(LookupError):
                    reload |= _subclass_keys(self.apps.get_model(*referrer))
        return reload

    def settle(self) -> None:
        """Make every rendered relation lead to the registry's current classes, as in the
        registry Django's executor hands to code.

        Django re-renders, after most changes, every model related to the changed one, so
        each relation of its registry leads to the current class of the model it names, and
        every current class has the reverse accessors of the relations pointing at it. This
        state re-renders only what the SQL needs (:meth:`models_to_reload`): a model pointing
        at one that was re-rendered keeps leading to the replaced class. Before code uses the
        rendered models as models (``RunPython``), those relations are pointed at the current
        classes, the way Django resolves a relation to a model rendered after it
        (:func:`djangocompat.repoint_relation`): a pass over the relation fields, where
        re-rendering them would re-render every model pointing at them in turn. A model
        whose parent class was replaced (a proxy or a multi-table child) cannot be repointed; it is
        re-rendered, with what points at it (Django's delayed re-renders settle the same
        way, so ``clear_delayed_apps_cache()`` has nothing left to do).
        """
        self.is_delayed = False
        apps = self.__dict__.get("apps")
        if not isinstance(apps, IncrementalApps):
            return
        while apps.replaced_since_settled:
            apps.replaced_since_settled = False
            rerender: set[Key] = set()
            touched: set[ModelClass] = set()
            for model in list(apps.get_models(include_auto_created=True)):
                if any(_current_class(apps, base) is not base for base in _model_bases(model)):
                    # A proxy or child of a replaced class: only a new class can fix that.
                    rerender.add((model._meta.app_label, str(model._meta.model_name)))
                    continue
                for field in _relation_fields(model):
                    rel = field.remote_field
                    target = _current_class(apps, rel.model)
                    through = rel.through if getattr(rel, "through", None) is not None else None
                    current_through = _current_class(apps, through) if through else None
                    if target is rel.model and current_through is through:
                        continue
                    if getattr(rel, "parent_link", False):
                        rerender.add((model._meta.app_label, str(model._meta.model_name)))
                        continue
                    djangocompat.repoint_relation(field, target, current_through)
                    touched.update((model, target))
            for model in touched:
                djangocompat.expire_model_cache(model)
            if rerender:
                djangocompat.reload_models(self, self._with_referrers(rerender))  # settle again

    def _with_referrers(self, keys: set[Key]) -> set[Key]:
        """``keys``, their subclasses and every model pointing at them, all levels."""
        closure: set[Key] = set()
        pending = list(keys)
        while pending:
            key = pending.pop()
            if key in closure or key not in self.models:
                continue
            closure.add(key)
            pending.extend(
                referrer for referrer, fields in self.relations.get(key, {}).items() if fields
            )
            with contextlib.suppress(LookupError):
                pending.extend(_subclass_keys(self.apps.get_model(*key)))
        return closure

    def detached(self) -> IncrementalState:
        """A copy to walk forward without changing this state, for the operations
        :func:`walkable` accepts.

        The model states are shared: :func:`state_before` gives the walking copy fresh
        copies of the ones each such operation changes. The registry's dictionaries and the
        relation index are copied; the rendered classes are shared, as ``clone()`` does.
        """
        copy = IncrementalState(models=dict(self.models), real_apps=self.real_apps)
        if "apps" in self.__dict__:
            copy.apps = self.apps.clone()
        copy.is_delayed = self.is_delayed
        djangocompat.copy_relation_index(self, copy)
        return copy

    def remove_model(self, app_label: str, model_name: str) -> None:
        self.__dict__.pop("_concretes", None)
        super().remove_model(app_label, model_name)

    def _referrers_affected(self, key: Key, model: ModelClass) -> bool:
        """Whether the change just made to ``key``'s state matters to the models pointing at it.

        ``model`` is the class rendered before the change. A referrer's SQL depends on the
        referenced model's table, its primary key and the fields its foreign keys name
        (``to_field``); a change that leaves all of them as they were (a new field, an index,
        a constraint, a changed column nobody points at) leaves the referrers' classes right
        as they are, and they keep pointing at ``model``, whose table and keys are the same.
        Anything this cannot tell (a proxy, a missing field) counts as mattering.
        """
        state = self.models.get(key)
        if state is None:
            return True
        opts = model._meta
        if opts.pk is None or opts.original_attrs.get("db_table") != state.options.get("db_table"):
            return True
        keys = [
            name for name, field in state.fields.items() if getattr(field, "primary_key", False)
        ]
        if keys != [opts.pk.name]:
            return True
        referenced = {opts.pk.name}
        for fields in self.relations.get(key, {}).values():
            for field in fields.values():
                referenced.update(name for name in getattr(field, "to_fields", ()) or () if name)
        for name in referenced:
            new = state.fields.get(name)
            try:
                old = opts.get_field(name)
            except FieldDoesNotExist:
                return True
            if not isinstance(old, models.Field) or new is None:
                return True
            if _column_signature(old) != _column_signature(new):
                return True
        return False

    def alter_field(
        self, app_label: str, model_name: str, name: str, field: Any, preserve_default: bool
    ) -> None:
        # Django's alter_field() ends by scanning every field of the project
        # (field_is_referenced(), once per AlterField) only to choose between a delayed and
        # an immediate re-render; models_to_reload() above re-renders the same models
        # either way, and the flag it sets (is_delayed) only matters to RunPython, which the
        # analysis never runs. The rest of its body, as in Django 5.2 to 6.1 (the versions
        # djangocompat.FINGERPRINTS records; tests/test_djangocompat.py fails on another):
        if not preserve_default:
            field = field.clone()
            field.default = NOT_PROVIDED
        model_key = (app_label, model_name)
        fields = self.models[model_key].fields
        if djangocompat.relation_index_built(self):
            order = list(fields)
            old_field = fields.pop(name)
            if old_field.is_relation:
                self.resolve_model_field_relations(model_key, name, old_field)
            fields[name] = field
            if field.is_relation:
                self.resolve_model_field_relations(model_key, name, field)
            if order[-1] != name:
                # The field keeps its place, as in the state of Django's executor, which
                # has no relation index (the rendered class's field order follows it).
                moved = {key: fields[key] for key in order}
                fields.clear()
                fields.update(moved)
        else:
            fields[name] = field
        self.reload_model(*model_key, delay=True)

    def concrete_models_and_proxies(self) -> tuple[dict[Key, Key], Any]:
        # Django computes this from every model state each time a relation field is added or
        # changed; it only changes when a model comes or goes (a model's proxy option is set
        # when it is created), so it is kept until then.
        cached = self.__dict__.get("_concretes")
        if cached is None or cached[0] != len(self.models):
            found = super().concrete_models_and_proxies()
            cached = self.__dict__["_concretes"] = (len(self.models), found)
        return cached[1]

    def add_model(self, model_state: Any) -> None:
        self.__dict__.pop("_concretes", None)
        super().add_model(model_state)

    def rename_model(self, app_label: str, old_name: str, new_name: str) -> None:
        self.__dict__.pop("_concretes", None)
        # RenameModel's SQL alters every column pointing at the renamed model, which the
        # schema editor learns from the old class (see models_to_reload above). Django
        # re-renders the referrers first, which expires the old class's relation tree while
        # it is still registered: it gets the tree back once it is gone.
        old = None
        if "apps" in self.__dict__:
            with contextlib.suppress(LookupError):
                old = self.apps.get_model(app_label, old_name)
        if old is not None:
            _keep_reverse_relations(old)
        tree = djangocompat.relation_tree_of(old) if old is not None else None
        super().rename_model(app_label, old_name, new_name)
        if old is not None and tree is not None:
            djangocompat.restore_relation_tree(old, tree)

    def rename_field(self, app_label: str, model_name: str, old_name: str, new_name: str) -> None:
        # Django's rename_field() finds the fields that name the renamed one (a to_field) by
        # scanning every field of the project (get_references()); only the models pointing at
        # this one can name it, and the relation index knows them. The rest of its body, as
        # in Django 5.2 to 6.1 (the field_names part is 5.2's, for CompositePrimaryKey; the
        # shape of the renamed *_together options follows the version; the versions
        # djangocompat.FINGERPRINTS records):
        model_key = (app_label, model_name)
        model_state = self.models[model_key]
        fields = model_state.fields
        try:
            found = fields.pop(old_name)
        except KeyError:
            raise FieldDoesNotExist(
                f"{app_label}.{model_name} has no field named '{old_name}'"
            ) from None
        fields[new_name] = found
        for field in fields.values():
            from_fields = getattr(field, "from_fields", None)
            if from_fields:
                field.from_fields = tuple(new_name if n == old_name else n for n in from_fields)
            field_names = getattr(field, "field_names", None)
            if field_names and old_name in field_names:
                field.field_names = tuple(new_name if n == old_name else n for n in field_names)
        options = model_state.options
        for option in ("index_together", "unique_together"):
            if option in options:
                options[option] = djangocompat.renamed_together(options[option], old_name, new_name)
        delay = True
        for referrer, named in self.relations.get(model_key, {}).items():
            referrer_state = self.models.get(referrer)
            if not named or referrer_state is None:
                continue
            for field in referrer_state.fields.values():
                reference = field_references(referrer, field, model_key, old_name, found)
                if not reference:
                    continue
                delay = False
                if reference.to:
                    remote_field, to_fields = reference.to
                    if getattr(remote_field, "field_name", None) == old_name:
                        remote_field.field_name = new_name
                    if to_fields:
                        field.to_fields = tuple(new_name if n == old_name else n for n in to_fields)
        if djangocompat.relation_index_built(self):
            old_name_lower = old_name.lower()
            new_name_lower = new_name.lower()
            for to_model in self.relations.values():
                if old_name_lower in to_model[model_key]:
                    moved = to_model[model_key].pop(old_name_lower)
                    moved.name = new_name_lower
                    to_model[model_key][new_name_lower] = moved
        self.reload_model(*model_key, delay=delay)

    @cached_property
    def apps(self) -> StateApps:
        # Django passes its set of app labels; the stubs ask for a list (same iteration order).
        return IncrementalApps(list(self.real_apps), self.models)


class IncrementalApps(StateApps):
    """The rendered models of an :class:`IncrementalState`, without three costs per change.

    * ``Apps.clear_cache()`` expires the cached fields and relations of every model of the
      registry, after each re-render: work that grows with the project, once per change.
      Only some models can hold an outdated cache after a change, and only those are
      expired (see :meth:`_outdated`); every other model's cache already equals what it
      would compute again.
    * ``Apps.clear_cache()`` also empties the cache of ``get_swappable_settings_name()``,
      a ``functools.cache`` on the method and so shared by every registry, Django's global
      one included. After each re-render, every foreign key that gets cloned
      (``deconstruct()``) then scans all the project's models again to learn whether its
      target is swappable. Swappable settings do not change during a run (that method's
      docstring says as much), so that cache is kept.
    * ``StateApps.clone()`` deep-copies the registry's dictionaries; their values are
      model classes, which ``deepcopy`` returns as they are, so a plain two-level copy is
      the same registry for a fraction of the cost.
    """

    def __init__(
        self,
        real_apps: list[str],
        models: dict[Key, Any],
        ignore_swappable: bool = False,
    ) -> None:
        #: Model classes registered or unregistered since caches were last expired.
        self._changed: list[ModelClass] = []
        #: Relation-tree label -> the registered models whose cached reverse relations come
        #: from that label's relation tree: the model itself, its proxies and its children
        #: (``_get_fields()`` adds the reverse relations of every ancestor). ``None`` until
        #: first needed (a clone often never needs it; see :meth:`_dependents_index`).
        self._dependents: defaultdict[str, set[ModelClass]] | None = defaultdict(set)
        #: Model classes unregistered since :meth:`release_retired` last ran.
        self._retired: list[ModelClass] = []
        #: Whether a class was replaced or removed since ``IncrementalState.settle()`` last
        #: pointed the relations at the current classes.
        self.replaced_since_settled = False
        super().__init__(real_apps, models, ignore_swappable)

    def register_model(self, app_label: str, model: ModelClass) -> None:
        config = self.app_configs.get(app_label)
        replaced = config.models.get(str(model._meta.model_name)) if config else None
        if replaced is not None and replaced is not model:
            self._forget(replaced)
        self._remember(model)
        super().register_model(app_label, model)

    def unregister_model(self, app_label: str, model_name: str) -> None:
        config = self.app_configs.get(app_label)
        current = config.models.get(model_name) if config else None
        super().unregister_model(app_label, model_name)
        if current is not None:
            self._forget(current)

    def _remember(self, model: ModelClass) -> None:
        self._changed.append(model)
        if self._dependents is not None:
            for label in _tree_labels(model):
                self._dependents[label].add(model)

    def _forget(self, model: ModelClass) -> None:
        self._changed.append(model)
        self._retired.append(model)
        self.replaced_since_settled = True
        if self._dependents is not None:
            for label in _tree_labels(model):
                self._dependents[label].discard(model)

    def _dependents_index(self) -> defaultdict[str, set[ModelClass]]:
        """``_dependents``, built from the registered models if this registry has none yet."""
        if self._dependents is None:
            index: defaultdict[str, set[ModelClass]] = defaultdict(set)
            for found in self.all_models.values():
                for model in found.values():
                    for label in _tree_labels(model):
                        index[label].add(model)
            self._dependents = index
        return self._dependents

    def clear_cache(self) -> None:
        # Apps.clear_cache() without get_swappable_settings_name.cache_clear(), expiring the
        # models a change can have outdated instead of all of them.
        djangocompat.clear_models_cache(self)
        if self.ready:
            changed, self._changed = self._changed, []
            for model in self._outdated(changed):
                djangocompat.expire_model_cache(model)

    def _outdated(self, changed: list[ModelClass]) -> list[ModelClass]:
        """The registered models whose caches ``changed`` (classes in or out) can outdate.

        A model's cache holds its own fields and its ancestors' (which a registered class
        never changes: a re-rendered model is a new class) and the reverse relations of its
        relation tree and its ancestors' trees. Django builds those trees from the fields of
        every registered model, keyed by the label of each relation's (concrete) target, so
        a class coming in or going out can change the trees of its fields' targets only,
        and with them the caches of their dependents. The changed classes themselves, and
        the dependents of their own labels, are expired too, which costs little. Swapped
        models are left alone, as ``Apps.clear_cache()`` leaves them.
        """
        if not changed:
            return []
        labels: set[str] = set()
        candidates: set[ModelClass] = set(changed)
        for model in changed:
            opts = model._meta
            labels.add(opts.concrete_model._meta.label)  # type: ignore[union-attr]
            for field in (*opts.local_fields, *opts.local_many_to_many, *opts.private_fields):
                remote_field = getattr(field, "remote_field", None)
                if remote_field is None:
                    continue
                for target in (remote_field.model, getattr(remote_field, "through", None)):
                    if target is not None and not isinstance(target, str):
                        labels.add(target._meta.concrete_model._meta.label)
        dependents = self._dependents_index()
        for label in labels:
            candidates.update(dependents.get(label, ()))
        outdated = []
        for model in candidates:
            opts = model._meta
            config = self.app_configs.get(opts.app_label)
            if config is None or config.models.get(str(opts.model_name)) is not model:
                continue  # not (or no longer) in this registry
            if opts.swapped:
                continue
            outdated.append(model)
        return outdated

    def release_retired(self) -> None:
        """Cut the links from the classes this registry let go of to the classes around them.

        A re-rendered model leaves its old class behind, and that class stays alive while a
        model that was not re-rendered still points at it (a model pointing at a referrer
        of the changed model keeps the referrer's old class: the SQL of its own fields only
        needs the old class's table and key, which did not change). Through the reverse
        accessors that every model pointing at it set on it, and its cached reverse
        relations, an old class reaches the old classes of all those models, whose forward
        relations reach older classes still: a walk would keep every class it ever
        rendered alive, and the garbage collector would go through all of them again and
        again. Once nothing needs an old class's reverse side any more (the states before
        the operations of a migration are gone once the migration is judged), those links
        are cut; what remains of the class, its own fields, is what the models still
        pointing at it use.
        """
        from django.db.models.fields.related_descriptors import (
            ReverseManyToOneDescriptor,
            ReverseOneToOneDescriptor,
        )

        retired, self._retired = self._retired, []
        for model in retired:
            opts = model._meta
            config = self.app_configs.get(opts.app_label)
            if config is not None and config.models.get(str(opts.model_name)) is model:
                continue  # registered again
            for name, value in list(vars(model).items()):
                if isinstance(value, ReverseManyToOneDescriptor | ReverseOneToOneDescriptor) and (
                    getattr(value, "reverse", True)
                ):
                    delattr(model, name)
            djangocompat.expire_model_cache(model)

    def clone(self) -> StateApps:
        clone = IncrementalApps([], {})
        clone.all_models = defaultdict(
            dict, {label: dict(found) for label, found in self.all_models.items()}
        )
        for app_label in self.app_configs:
            app_config = AppConfigStub(app_label)
            app_config.apps = clone
            app_config.import_models()
            clone.app_configs[app_label] = app_config
        clone.real_models = self.real_models
        # The copy of the state before an operation is mostly only read: copying the index
        # for each operation would cost a walk a pass over every model per operation.
        clone._dependents = None
        clone._changed = list(self._changed)
        clone.replaced_since_settled = self.replaced_since_settled
        return clone


def _relation_fields(model: ModelClass) -> Iterator[Any]:
    """The relation fields ``model`` declares (foreign keys, one-to-one and many-to-many
    fields), whose targets are classes (a relation still waiting for its model has a name)."""
    opts = model._meta
    for field in (*opts.local_fields, *opts.local_many_to_many):
        rel = getattr(field, "remote_field", None)
        if rel is not None and not isinstance(rel.model, str):
            yield field


def _model_bases(model: ModelClass) -> list[ModelClass]:
    """The model classes ``model`` is a direct subclass of (a proxy's or a child's parent)."""
    return [
        base
        for base in model.__bases__
        if isinstance(base, type) and issubclass(base, models.Model)
        and base is not models.Model and not base._meta.abstract
    ]  # fmt: skip


def _current_class(apps: StateApps, model: Any) -> Any:
    """The class ``apps`` has now for the model ``model`` is a class of (``model`` itself
    when ``apps`` has none: a model of an app the registry does not render, or a name)."""
    if isinstance(model, str):
        return model
    opts = model._meta
    try:
        return apps.get_model(opts.app_label, opts.model_name)
    except LookupError:
        return model


def _tree_labels(model: ModelClass) -> set[str]:
    """Labels of the relation trees a model's cached reverse relations come from."""
    opts = model._meta
    labels = {opts.concrete_model._meta.label}  # type: ignore[union-attr]
    for parent in opts.get_parent_list():
        labels.add(parent._meta.label)
        labels.add(parent._meta.concrete_model._meta.label)  # type: ignore[union-attr]
    return labels


#: Field options no SQL depends on; binding a field to its model sets some of them (the
#: verbose name from the name, ``serialize=False`` on the primary key).
_NOT_SQL = frozenset(
    {"verbose_name", "serialize", "help_text", "editable", "blank", "error_messages",
     "validators", "choices", "auto_created"}
)  # fmt: skip


def _column_signature(field: Any) -> tuple[Any, ...]:
    """What of a field a column pointing at it depends on: its deconstruction, but for the
    options no SQL depends on."""
    _, path, args, kwargs = field.deconstruct()
    return (path, args, {k: v for k, v in kwargs.items() if k not in _NOT_SQL})


@contextlib.contextmanager
def swappable_names_at_once() -> Iterator[None]:
    """Answer Django's ``apps.get_swappable_settings_name()`` from one pass over the models.

    Cloning a foreign key (every render of a model that has one) asks the project's global
    registry whether its target is swappable. Django caches each answer, but finds each new
    one by going through every model: one pass per distinct target, so a walk over a
    history whose models point at hundreds of others costs hundreds of passes over hundreds
    of models. The answers only depend on which models are swappable or swapped; during the
    walk they are read from a table built in one pass, in the same order Django's loop
    looks, so every answer is the same.
    """
    from django.apps import apps

    if djangocompat.swappable_lookup_replaced(apps):
        yield  # already in place (a walk within a walk)
        return

    table: dict[str, str | None] = {}

    def build() -> None:
        table.clear()
        for model in apps.get_models(include_swapped=True):
            opts = model._meta
            if opts.swapped:
                table.setdefault(opts.swapped.lower(), opts.swappable)
            if opts.swappable:
                table.setdefault(opts.label_lower, opts.swappable)

    def lookup(to_string: str) -> str | None:
        return table.get(to_string.lower())

    build()
    djangocompat.replace_swappable_lookup(apps, lookup, build)
    try:
        yield
    finally:
        djangocompat.restore_swappable_lookup(apps)


def _keep_reverse_relations(model: ModelClass) -> None:
    """Make ``model`` remember the relations pointing at it, as the registry has them now."""
    model._meta.related_objects  # noqa: B018  # computed and cached on the class


def _subclass_keys(model: ModelClass) -> set[Key]:
    """Keys of the models rendered as subclasses of ``model`` (proxies, children), all levels."""
    keys: set[Key] = set()
    pending = list(model.__subclasses__())
    while pending:
        sub = pending.pop()
        if issubclass(sub, models.Model):
            keys.add((sub._meta.app_label, str(sub._meta.model_name)))
            pending.extend(sub.__subclasses__())
    return keys


def _primary_key_is_relation(model_state: Any) -> bool:
    if model_state is None:
        return False
    return any(
        field.is_relation and getattr(field, "primary_key", False)
        for field in model_state.fields.values()
    )


def state_before(operation: Operation, app_label: str, state: ProjectState) -> ProjectState:
    """A copy of ``state`` as it is before ``operation`` changes it (like ``state.clone()``).

    ``clone()`` copies every model state. For Django's own operations, whose
    ``state_forwards`` is known to change only the model states named here, the copy shares
    the others and the live ``state`` gets fresh copies of the ones about to change, so the
    copy keeps the originals. The rendered registry is cloned as ``clone()`` does (a copy of
    its dictionaries; the model classes are shared). Any other operation gets a real
    ``clone()``.

    A state not rendered yet (the first operation judged after a walk) is rendered here:
    the schema editor needs the models before and after the operation, and rendering the
    state once and copying its registry costs half of rendering a clone and the state each.
    ``RunSQL`` needs no models, so it gets a plain clone and leaves the state as it is.
    """
    from django.db.migrations.operations.special import RunSQL

    changed = _models_changed(operation, app_label, state)
    if changed is None or ("apps" not in state.__dict__ and isinstance(operation, RunSQL)):
        return state.clone()
    before = ProjectState(models=dict(state.models), real_apps=state.real_apps)
    before.apps = state.apps.clone()
    before.is_delayed = state.is_delayed
    for key in changed:
        if key in state.models:
            state.models[key] = state.models[key].clone()
    return before


def _models_changed(operation: Operation, app_label: str, state: ProjectState) -> set[Key] | None:
    """Keys of the model states ``operation.state_forwards`` changes in place, if known."""
    from django.db.migrations.operations.fields import FieldOperation, RenameField
    from django.db.migrations.operations.models import (
        IndexOperation,
        ModelOperation,
        RenameModel,
    )
    from django.db.migrations.operations.special import RunPython, RunSQL, SeparateDatabaseAndState
    from django.db.migrations.utils import get_references

    if _changes_no_state(operation):
        return set()  # this package's operations that only touch rows (Backfill)
    if not type(operation).__module__.startswith("django."):
        return None  # a project's or a package's operation may change anything
    if isinstance(operation, RunPython):
        return set()
    if isinstance(operation, RunSQL | SeparateDatabaseAndState):
        keys: set[Key] = set()
        for inner in operation.state_operations:
            inner_keys = _models_changed(inner, app_label, state)
            if inner_keys is None:
                return None
            keys |= inner_keys
        return keys
    if isinstance(operation, RenameModel):
        # Repoints the fields of every model that refers to the renamed one.
        old = (app_label, operation.old_name_lower)
        return {old} | {
            (model_state.app_label, model_state.name_lower)
            for model_state, *_ in get_references(state, old)
        }
    if isinstance(operation, RenameField):
        # Also renames the field in the foreign keys of the models that name it (to_field).
        key = (app_label, operation.model_name_lower)
        return {key} | {referrer for referrer, fields in state.relations.get(key, {}).items()}
    if isinstance(operation, FieldOperation | IndexOperation):
        return {(app_label, operation.model_name_lower)}
    if isinstance(operation, ModelOperation):
        return {(app_label, operation.name_lower)}
    return None


def walkable(operation: Operation) -> bool:
    """Whether :func:`state_before` knows what ``operation`` changes in a project state (so a
    walk may share the rest), which is so for Django's own operations and this package's."""
    from django.db.migrations.operations.special import RunSQL, SeparateDatabaseAndState

    if _changes_no_state(operation):
        return True
    if not type(operation).__module__.startswith("django."):
        return False
    if isinstance(operation, RunSQL | SeparateDatabaseAndState):
        return all(walkable(inner) for inner in operation.state_operations)
    return True


def _changes_no_state(operation: Operation) -> bool:
    """Whether ``operation`` is one of this package's that only touch rows (``Backfill``), and
    not a subclass with a ``state_forwards`` of its own."""
    from django_safemigrate.execution.backfill import Backfill

    return (
        isinstance(operation, Backfill)
        and type(operation).state_forwards is Backfill.state_forwards
    )


def _database_side(
    app_label: str, operation: Any, editor: Any, from_state: ProjectState
) -> list[Statement]:
    """The SQL of a ``SeparateDatabaseAndState``'s database operations.

    Mirrors its ``database_forwards`` but never runs Python: a ``RunPython`` on the
    database side is a data migration, not something to execute while analysing.
    """
    from django.db.migrations.operations.special import RunSQL

    statements: list[Statement] = []
    state = from_state.clone()
    for database_operation in operation.database_operations:
        to_state = state.clone()
        database_operation.state_forwards(app_label, to_state)
        if isinstance(database_operation, RunSQL):
            statements.extend(_runsql_statements(database_operation))
        elif database_operation.reduces_to_sql:
            before = djangocompat.collected_mark(editor)
            database_operation.database_forwards(app_label, editor, state, to_state)
            for text in djangocompat.collected_since(editor, before):
                statements.extend(parse(text))
        state = to_state
    return statements


def _render_error(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@contextlib.contextmanager
def quiet_collector() -> Iterator[None]:
    """Keep the garbage collector's full passes out of the walk.

    The walk allocates (and drops) model classes, fields and parse trees by the hundred
    thousand, so the collector runs often. Its young passes stay cheap, but each full pass
    goes through every object alive, and the walk's own results make that grow with the
    history: on a 2,000-migration project the full passes alone took longer than a tenth
    of the whole run, and grew faster than the history (bench/speed.py). During the walk,
    what existed before it (Django, the loaded migrations) is set aside with
    ``gc.freeze()``, and full passes wait until the walk is over; the young passes still
    free the classes the walk drops, and what they promote instead waits for the next full
    pass after the walk (about 17 KB per migration). Not done when the caller froze objects
    already, whose freeze ``gc.unfreeze()`` would undo, or turned the collector off; a
    command that exits soon after the walk (``checkmigrations``) wraps all its work in it, so
    that the promoted garbage is simply left for the exit.
    """
    if gc.get_freeze_count() or not gc.isenabled():
        yield
        return
    thresholds = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(thresholds[0], thresholds[1], 1_000_000)
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()


def release_retired(state: ProjectState) -> None:
    """Let the classes a walk re-rendered go (:meth:`IncrementalApps.release_retired`)."""
    apps = state.__dict__.get("apps")
    if isinstance(apps, IncrementalApps):
        apps.release_retired()
