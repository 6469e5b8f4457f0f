"""Loading migrations and resolving what a command was asked to do.

Every command starts here, before it touches the database, so that a broken
migration file or a mistyped app label is reported in one clear paragraph
(exit code 2) instead of a traceback in the middle of a deploy.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, ClassVar

import django
from django.apps import apps
from django.db.migrations import Migration
from django.db.migrations.exceptions import (
    BadMigrationError,
    CircularDependencyError,
    InconsistentMigrationHistory,
    NodeNotFoundError,
)
from django.db.migrations.graph import MigrationGraph
from django.db.migrations.loader import AmbiguityError, MigrationLoader

from django_safemigrate.checksum import (
    Comparison,
    compare,
    definition_checksum,
    migration_checksum,
)
from django_safemigrate.exceptions import BrokenMigration, InconsistentHistory, UsageError
from django_safemigrate.execution.recorded import (
    RunRecorder,
    check_consistent_history,
    snapshot_active,
)

Key = tuple[str, str]


@dataclasses.dataclass(frozen=True)
class _BuiltGraph:
    graph: MigrationGraph
    replacements: dict[Key, Migration]
    replace_migrations: bool
    #: Of each replaced migration (the targets of squashed ones): whether it was
    #: applied when the graph was built. The graph depends on nothing else of the
    #: database: without squashed migrations, on nothing at all.
    #: ``None``: never shared (a squashed migration replaces another squashed one).
    targets_applied: frozenset[tuple[Key, bool]] | None
    #: Executor plans computed on this graph, by (targets, clean start, applied keys).
    plans: dict[Any, list[Any]] = dataclasses.field(default_factory=dict)


class SharedDiskLoader(MigrationLoader):
    """A loader that scans the migration modules and builds the graph once per run.

    A run builds several loaders (validation, the ledger, the gate, the executor);
    each would walk and instantiate every migration again and build the same graph.
    Inside :func:`sharing_disk_scan` they share the first scan, and the first graph
    while it still fits: the applied migrations are read from the database by every
    loader, and the graph is built again when the applied state of a migration that a
    squashed one replaces differs from the one it was built with (Django keeps or
    removes the squashed migration by that state, the only part of the graph that
    depends on the database).
    """

    _shared: ClassVar[SharedDiskLoader | None] = None
    _graph: ClassVar[_BuiltGraph | None] = None
    _depth: ClassVar[int] = 0

    def load_disk(self) -> None:
        shared = SharedDiskLoader._shared
        if shared is None:
            super().load_disk()
            if SharedDiskLoader._depth:
                SharedDiskLoader._shared = self
            return
        self.disk_migrations = dict(shared.disk_migrations)
        self.unmigrated_apps = set(shared.unmigrated_apps)
        self.migrated_apps = set(shared.migrated_apps)

    def check_consistent_history(self, connection: Any) -> None:
        # Within a governed run, from the run's read of the applied migrations.
        if snapshot_active(connection):
            check_consistent_history(self, connection)
        else:
            super().check_consistent_history(connection)

    def build_graph(self) -> None:
        if not SharedDiskLoader._depth:
            super().build_graph()
            return
        self.load_disk()
        if self.connection is None:
            self.applied_migrations = {}
        else:
            recorded: dict[Key, Any] = RunRecorder(self.connection).applied_migrations()
            self.applied_migrations = recorded
        built = SharedDiskLoader._graph
        if built is not None and self._fits(built):
            self.graph = built.graph
            self.replacements = dict(built.replacements)
            if self._replacing():
                # What Django's build_graph does to the applied migrations.
                for key, migration in self.replacements.items():
                    if all(target in self.applied_migrations for target in migration.replaces):
                        self.applied_migrations[key] = migration
                    else:
                        self.applied_migrations.pop(key, None)
            return
        super().build_graph()
        SharedDiskLoader._graph = _BuiltGraph(
            self.graph,
            dict(self.replacements),
            self._replacing(),
            self._targets_applied(),
        )

    @classmethod
    def plans_of(cls, graph: MigrationGraph) -> dict[Any, list[Any]] | None:
        """The executor plans kept for ``graph`` when it is the run's shared graph."""
        built = cls._graph
        if not cls._depth or built is None or built.graph is not graph:
            return None
        return built.plans

    def _replacing(self) -> bool:
        # Set by MigrationLoader.__init__ (not in the type stubs).
        return bool(getattr(self, "replace_migrations", True))

    def _targets_applied(self) -> frozenset[tuple[Key, bool]] | None:
        if not self._replacing():
            return frozenset()
        targets = {t for migration in self.replacements.values() for t in migration.replaces}
        if targets & set(self.replacements):
            return None
        # build_graph() changed only the squashed migrations' keys in applied_migrations;
        # the targets' are what the database says.
        return frozenset(
            (target, target in self.applied_migrations)
            for migration in self.replacements.values()
            for target in migration.replaces
        )

    def _fits(self, built: _BuiltGraph) -> bool:
        if built.targets_applied is None or built.replace_migrations != self._replacing():
            return False
        return all(
            (key in self.applied_migrations) == applied for key, applied in built.targets_applied
        )


@contextlib.contextmanager
def sharing_disk_scan() -> Iterator[None]:
    """Let every :class:`SharedDiskLoader` built inside the block share one disk scan
    and, while it fits the applied migrations, one graph."""
    SharedDiskLoader._depth += 1
    try:
        yield
    finally:
        SharedDiskLoader._depth -= 1
        if not SharedDiskLoader._depth:
            SharedDiskLoader._shared = None
            SharedDiskLoader._graph = None


def load_disk_migrations(nothing: str = "Nothing was applied.") -> MigrationLoader:
    """Import every migration module without touching a database.

    ``nothing`` ends an error's message: what the command did not do.
    """
    try:
        return SharedDiskLoader(None)
    except NodeNotFoundError as exc:
        raise BrokenMigration(
            f"The migration graph is broken: {exc}. A migration depends on one that does not "
            f"exist; restore the missing file or fix the dependency. {nothing}"
        ) from exc
    except BadMigrationError as exc:
        raise BrokenMigration(f"{exc}. {nothing}") from exc
    except CircularDependencyError as exc:
        raise BrokenMigration(describe_cycle(exc, nothing)) from exc
    except Exception as exc:
        raise BrokenMigration(_describe_import_failure(exc, nothing)) from exc


def describe_cycle(exc: CircularDependencyError, nothing: str = "Nothing was applied.") -> str:
    """Name the migrations (and their files) whose dependencies form a circle."""
    keys = [tuple(item.strip().split(".", 1)) for item in str(exc).split(",") if "." in item]
    named = []
    for app_label, name in keys:
        path = _migration_file(app_label, name)
        named.append(f"{app_label}.{name}" + (f" ({path})" if path else ""))
    circle = " -> ".join([*named, ".".join(keys[0])]) if named else str(exc)
    return (
        f"The migration dependencies form a circle: {circle}. Each depends, directly or "
        "through the others, on itself, so no order can apply them. Remove the dependency "
        f"that points forward in one of these files and run the command again. {nothing}"
    )


def _migration_file(app_label: str, name: str) -> str | None:
    """The file of an imported migration module, relative to the current directory."""
    import sys

    module_name, _ = MigrationLoader.migrations_module(app_label)
    module = sys.modules.get(f"{module_name}.{name}") if module_name else None
    path = getattr(module, "__file__", None)
    return _relative(path) if path else None


def check_history(loader: MigrationLoader, connection: Any, *, nothing: str) -> None:
    """Raise :class:`InconsistentHistory` when an applied migration's dependency is not.

    ``nothing`` ends the message: what the command did not do ("Nothing was applied.").
    """
    try:
        loader.check_consistent_history(connection)
    except InconsistentMigrationHistory as exc:
        raise InconsistentHistory(describe_inconsistent_history(exc, nothing)) from exc


def refuse_conflicts(loader: MigrationLoader) -> None:
    """Raise :class:`UsageError` for conflicting leaf migrations, as ``migrate`` refuses them."""
    conflicts = loader.detect_conflicts()
    if conflicts:
        names = "; ".join(
            f"{', '.join(sorted(leaves))} in {app_label}"
            for app_label, leaves in sorted(conflicts.items())
        )
        raise UsageError(
            "Conflicting migrations detected; multiple leaf nodes in the migration graph: "
            f"({names}). Merge them with 'python manage.py makemigrations --merge' (or make "
            "one depend on the other), then run the command again. Nothing was changed."
        )


def describe_inconsistent_history(exc: InconsistentMigrationHistory, nothing: str) -> str:
    return (
        f"{str(exc).rstrip('.')}. The database's migration history does not fit the migration "
        "files: django_migrations records a migration as applied while one it depends on is "
        "not (a dependency added to an applied migration, or rows removed from "
        "django_migrations). Check which of the two the schema matches; then apply the "
        "missing dependency, record it with 'migrate APP NAME --fake' if its changes are "
        f"already there, or correct the dependency in the file. {nothing}"
    )


def _describe_import_failure(exc: BaseException, nothing: str) -> str:
    where = _failing_migration_file(exc)
    what = "".join(traceback.format_exception_only(type(exc), exc)).strip().splitlines()
    summary = what[-1] if what else type(exc).__name__
    place = (
        f"The migration file {where} could not be imported"
        if where
        else ("A migration module could not be imported")
    )
    return (
        f"{place}: {summary}. Fix the file (run 'python -c \"import <module>\"' to see the "
        f"full error) and run the command again. {nothing}"
    )


def _failing_migration_file(exc: BaseException) -> str | None:
    if isinstance(exc, SyntaxError) and exc.filename:
        return f"{_relative(exc.filename)} (line {exc.lineno})"
    found = None
    django_dir = os.path.dirname(os.path.abspath(django.__file__)) + os.sep
    for frame, lineno in traceback.walk_tb(exc.__traceback__):
        filename = frame.f_code.co_filename
        # Django's own django/db/migrations/ package is never the migration at fault.
        if f"{os.sep}migrations{os.sep}" in filename and not os.path.abspath(filename).startswith(
            django_dir
        ):
            found = f"{_relative(filename)} (line {lineno})"
    return found


def _relative(path: str) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:  # another drive on Windows
        return path


@dataclasses.dataclass(frozen=True)
class Selection:
    """What the user asked to migrate, validated against the migrations on disk."""

    app_label: str | None
    migration_name: str | None

    def describe(self) -> str:
        if self.app_label and self.migration_name:
            return f"{self.app_label}.{self.migration_name}"
        return self.app_label or "all apps"


def validate_selection(
    loader: MigrationLoader,
    app_label: str | None,
    migration_name: str | None,
    nothing: str = "Nothing was applied.",
) -> Selection:
    """Check app label and migration name the way ``migrate`` will, but as usage errors."""
    if not app_label:
        return Selection(None, None)
    try:
        apps.get_app_config(app_label)
    except LookupError:
        raise UsageError(
            f"There is no installed app with label '{app_label}'. Check the spelling against "
            f"INSTALLED_APPS (the label is the last part of the app's dotted path unless its "
            f"AppConfig sets another). {nothing}"
        ) from None
    if app_label not in loader.migrated_apps:
        raise UsageError(
            f"The app '{app_label}' has no migrations. Run 'python manage.py makemigrations "
            f"{app_label}' first, or name another app. {nothing}"
        )
    if migration_name and migration_name != "zero":
        try:
            migration = loader.get_migration_by_prefix(app_label, migration_name)
        except AmbiguityError:
            raise UsageError(
                f"More than one migration of '{app_label}' starts with '{migration_name}'. "
                f"Give more of its name. {nothing}"
            ) from None
        except KeyError:
            raise UsageError(
                f"The app '{app_label}' has no migration whose name starts with "
                f"'{migration_name}'. 'python manage.py showmigrations {app_label}' lists them. "
                f"{nothing}"
            ) from None
        migration_name = migration.name
    return Selection(app_label, migration_name)


@dataclasses.dataclass(frozen=True)
class ChecksumMismatch:
    key: Key
    recorded: str
    current: str

    def describe(self) -> str:
        app_label, name = self.key
        return f"{app_label}.{name} (recorded {self.recorded[:19]}…, file now {self.current[:19]}…)"


@dataclasses.dataclass(frozen=True)
class Rebaseline:
    """An applied migration recorded with an older checksum algorithm, file unchanged."""

    key: Key
    recorded: str
    current: str
    #: The old checksum could not be verified (it held a memory address): the file is
    #: taken as it is, and the caller says so.
    verified: bool


@dataclasses.dataclass(frozen=True)
class ReachedCodeChanged:
    """An applied migration whose own file is unchanged, but not the code it reaches."""

    key: Key
    recorded: str
    current: str


@dataclasses.dataclass(frozen=True)
class AppliedCheck:
    edited: list[ChecksumMismatch]
    rebaseline: list[Rebaseline]
    #: A helper, constant or package the migration reaches changed since it was applied.
    #: The database ran the old code, which it keeps; not an edit of the migration.
    reached: list[ReachedCodeChanged] = dataclasses.field(default_factory=list)


def check_applied(
    loader: MigrationLoader,
    recorded: Mapping[Key, str],
    applied: Iterable[Key],
    checksum: Callable[[Migration], str] = migration_checksum,
    *,
    definitions: Mapping[Key, str | None] | None = None,
    definition: Callable[[Migration], str] = definition_checksum,
) -> AppliedCheck:
    """Applied migrations whose file no longer means what the ledger recorded, and
    those recorded with an older algorithm whose checksum is to be brought up to date.

    ``definitions`` holds the recorded definition checksums (the migration's own file):
    where the full checksum differs but the definition is the one recorded, only the
    project code the migration reaches changed, which is reported apart (``reached``).
    """
    edited, rebaseline, reached = [], [], []
    for key in sorted(applied):
        if key not in recorded or key not in loader.disk_migrations:
            continue
        migration = loader.disk_migrations[key]
        current = checksum(migration)
        found = compare(recorded[key], migration, current)
        if found is Comparison.EDITED:
            known = (definitions or {}).get(key)
            if known and definition(migration) == known:
                reached.append(ReachedCodeChanged(key, recorded[key], current))
            else:
                edited.append(ChecksumMismatch(key, recorded[key], current))
        elif found is not Comparison.SAME:
            verified = found is Comparison.UPGRADED
            rebaseline.append(Rebaseline(key, recorded[key], current, verified))
    return AppliedCheck(edited, rebaseline, reached)


def plan_targets(
    loader: MigrationLoader, app_label: str | None, migration_name: str | None
) -> list[tuple[str, str | None]]:
    """The executor targets for a validated selection, as ``migrate`` computes them."""
    if app_label and migration_name:
        if migration_name == "zero":
            return [(app_label, None)]
        return [(app_label, loader.get_migration_by_prefix(app_label, migration_name).name)]
    leaves = loader.graph.leaf_nodes()
    if app_label:
        return [key for key in leaves if key[0] == app_label]
    return list(leaves)
