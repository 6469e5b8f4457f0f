"""A migration's checksum: a hash of what it will execute, not of how its file is written.

The checksum (``sha256:v2:<hex>``) covers, for the migration as its file defines it
(a fresh instance of its class: operations that ``pre_migrate`` handlers insert
into the instance being applied, such as ``django.contrib.contenttypes``'s
``RenameContentType``, never count):

* every operation, by its class's dotted path and its deconstruction
  (``deconstruct()``), recursively;
* all of ``RunSQL``: each statement normalised by PostgreSQL's own parser
  (pglast, source positions dropped; placeholders taken as the driver sends them),
  its parameters exactly (value and type), the reverse SQL and the state operations;
* dependencies, ``replaces``, ``run_before``, ``initial`` and ``atomic``;
* the code that ``RunPython`` (forwards and reverse) and custom operations reach in
  the project: the syntax tree of each function and class they use (positions,
  comments and string prefix/quote style dropped), the module-level names those
  read (constants by the statement that binds them, imports followed),
  transitively within project modules.

The boundary of "the project": a module whose file is not inside the standard
library and not inside any ``site-packages`` or ``dist-packages`` directory, plus
the migration's own module wherever it is. Beyond it, code counts by name:

* the standard library, Django and django_safemigrate by qualified name (they
  define what a migration means; their upgrades do not edit history);
* any other installed package by qualified name plus its distribution's name and
  version (``importlib.metadata``), except the distribution that ships the
  migration itself, which counts by qualified name (its migrations move with it).

Everything is reduced to JSON with sorted keys and sorted sets: no ``repr()``, no
object ids, no hash-seed dependence, so the checksum is the same in every process,
on every machine and under every supported Python. A value with no canonical form
is taken structurally (its class's path and its attributes); one that cannot be,
stops with :class:`ChecksumUnavailable` naming the migration and the value.

Beside it, the *definition checksum* (:func:`definition_checksum`, same format) hashes
the same payload with the reach stopped at the migration's own module: code it uses
from other modules counts by qualified name only. The ledger keeps both for every
applied migration, so a deploy can tell an edited migration file (refused: the
database ran something else) from a change in the project code an applied migration
reaches (a helper edited, a package upgraded: the database already ran the old code,
so nothing is refused; the change is reported and becomes the new baseline).
Approvals and resumed steps always use the full checksum.

Checksums written before the algorithm carried a version (``sha256:<hex>``) are
version 1, kept frozen in :mod:`django_safemigrate.checksum_v1` to compare old
records: see :func:`compare`.
"""

from __future__ import annotations

import ast
import builtins
import contextlib
import dataclasses
import datetime
import decimal
import enum
import functools
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import re
import sys
import threading
import types
import uuid
import weakref
from collections.abc import Iterator
from pathlib import PurePath
from typing import Any

from django.db import migrations
from django.db.migrations.operations.base import Operation
from django.db.migrations.state import ModelState
from django.utils.functional import Promise

from django_safemigrate import checksum_v1
from django_safemigrate.exceptions import BrokenMigration

ALGORITHM = "sha256"
VERSION = 2
PREFIX = f"{ALGORITHM}:v{VERSION}:"

# Syntax-tree fields that say where or how code was written, not what it does.
# ``kind`` is ``"u"`` for a ``u"..."`` string: the same string.
_COSMETIC_FIELDS = frozenset(
    {"lineno", "col_offset", "end_lineno", "end_col_offset", "type_comment", "kind"}
)
# Parse-tree keys pglast emits for source positions.
_SQL_POSITION_KEYS = frozenset({"location", "stmt_location", "stmt_len"})
# Code of these distributions counts by qualified name alone: they define what a
# migration is, and upgrading them must not make history look edited.
_FRAMEWORKS = frozenset({"django", "django_safemigrate"})
# psycopg's placeholders: ``%s``, ``%b``, ``%t``, named ``%(name)s``, and ``%%``.
_PLACEHOLDER = re.compile(r"%(?:\((\w+)\))?([sbt])|%%")


# Literal types, most specific first (bool is handled before: it is an int).
_LITERALS: tuple[type, ...] = (str, bytes, int, float, complex)


class ChecksumUnavailable(BrokenMigration):
    """A migration holds a value that has no deterministic form to hash."""


def warm_up() -> None:
    """Import the SQL parser in the background while the command connects.

    pglast is a large extension module (tens of milliseconds to import); loading
    it while the main thread waits on the network keeps it off the deploy's path.
    Once per process (a fleet's runs share it).
    """
    global _warming  # noqa: PLW0603 - one background import per process
    if _warming or "pglast.parser" in sys.modules:
        return
    _warming = True

    def load() -> None:
        with contextlib.suppress(ImportError):
            import pglast.parser  # noqa: F401

    threading.Thread(target=load, name="safemigrate-warm-up", daemon=True).start()


_warming = False


class Precomputed:
    """Checksums of a plan's migrations, computed on a background thread.

    Applying a migration mostly waits on the database, with the GIL released;
    hashing the next migrations meanwhile keeps the ledger off the deploy's
    critical path. :meth:`get` falls back to computing on the spot. A migration
    whose checksums this process already knows (:func:`class_checksum`: the runs of a
    fleet's schemas share them) needs no thread.
    """

    def __init__(self, migrations: list[migrations.Migration]) -> None:
        pending = [m for m in migrations if type(m) not in _DEFINITION_BY_CLASS]
        if pending:  # starting a thread costs more than what is known already
            threading.Thread(
                target=self._run, args=(pending,), name="safemigrate-checksums", daemon=True
            ).start()

    @staticmethod
    def _run(plan: list[migrations.Migration]) -> None:
        for migration in plan:
            with contextlib.suppress(Exception):  # get() computes it again and raises there
                class_checksum(migration)
                class_definition(migration)

    def get(self, migration: migrations.Migration) -> str:
        return class_checksum(migration)

    def definition(self, migration: migrations.Migration) -> str:
        return class_definition(migration)


#: Checksums by migration class. A run needs a migration's checksum several times (its
#: report, its record, the lockfile), a fleet's runs once per schema, and computing it
#: parses the migration's RunPython code and RunSQL; a class stands for its module as
#: imported, so its checksums cannot change while the class lives.
_BY_CLASS: weakref.WeakKeyDictionary[type, str] = weakref.WeakKeyDictionary()
_DEFINITION_BY_CLASS: weakref.WeakKeyDictionary[type, str] = weakref.WeakKeyDictionary()


def class_checksum(migration: migrations.Migration) -> str:
    """:func:`migration_checksum`, computed once per migration class."""
    found = _BY_CLASS.get(type(migration))
    if found is None:
        found = _BY_CLASS[type(migration)] = migration_checksum(migration)
    return found


def class_definition(migration: migrations.Migration) -> str:
    """:func:`definition_checksum`, computed once per migration class."""
    found = _DEFINITION_BY_CLASS.get(type(migration))
    if found is None:
        found = _DEFINITION_BY_CLASS[type(migration)] = definition_checksum(migration)
    return found


# -- the checksum ------------------------------------------------------------------------


def migration_checksum(migration: migrations.Migration) -> str:
    """``"sha256:v2:<hex>"`` of what ``migration`` will execute."""
    return PREFIX + hashlib.sha256(payload(migration).encode()).hexdigest()


def definition_checksum(migration: migrations.Migration) -> str:
    """``"sha256:v2:<hex>"`` of the migration's own file: what it reaches elsewhere by name."""
    return PREFIX + hashlib.sha256(payload(migration, reach=False).encode()).hexdigest()


def checksum_and_modules(migration: migrations.Migration) -> tuple[str, frozenset[str]]:
    """:func:`migration_checksum`, and the modules whose code the hashing looked at."""
    canon = _Canon(migration, reach=True)
    text = _payload(migration, canon)
    return PREFIX + hashlib.sha256(text.encode()).hexdigest(), frozenset(canon.modules)


def payload(migration: migrations.Migration, *, reach: bool = True) -> str:
    """The canonical JSON text the checksum hashes (useful to see why two differ).

    ``reach=False`` stops at the migration's own module (the definition checksum).
    """
    return _payload(migration, _Canon(migration, reach=reach))


def _payload(migration: migrations.Migration, canon: _Canon) -> str:
    data = {
        "version": VERSION,
        "operations": [canon.operation(op) for op in defined_operations(migration)],
        "dependencies": sorted(_dependency(d) for d in migration.dependencies),
        "replaces": sorted([str(a), str(n)] for a, n in migration.replaces),
        "run_before": sorted([str(a), str(n)] for a, n in migration.run_before),
        "initial": bool(migration.initial),
        "atomic": bool(migration.atomic),
    }
    data["code"] = {key: canon.code[key] for key in sorted(canon.code)}
    return _dumps(data)


def defined_operations(migration: migrations.Migration) -> list[Any]:
    """The operations as the migration's file defines them.

    ``Migration.__init__`` copies the class's ``operations`` into the instance, and
    ``pre_migrate`` handlers (``django.contrib.contenttypes`` inserts a
    ``RenameContentType`` after each ``RenameModel``) change that copy. A fresh
    instance runs the file's own ``__init__`` again, so it also covers migrations
    that build their operations there.
    """
    fresh = type(migration)(migration.name, migration.app_label)
    return list(fresh.operations)


def _dumps(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def _dependency(dependency: Any) -> list[str]:
    # ``("auth", "__first__")`` and swappable dependencies (``SwappableTuple``) both
    # deconstruct to plain strings; the swappable setting's name is what the file says.
    setting = getattr(dependency, "setting", None)
    app_label = f"settings.{setting}" if setting else str(dependency[0])
    return [app_label, str(dependency[1])]


# -- where code lives --------------------------------------------------------------------


class Origin(enum.Enum):
    """Where a module's code lives, which decides how code from it counts."""

    #: Walked: syntax trees of what is reached, and what that reaches.
    PROJECT = "project"
    #: The standard library, Django, django_safemigrate: by qualified name.
    FRAMEWORK = "framework"
    #: Another installed distribution: by qualified name, distribution and version.
    INSTALLED = "installed"


def module_origin(module_name: str) -> Origin:
    """Where ``module_name`` lives (see the module docstring for the boundary)."""
    top = module_name.partition(".")[0]
    if top in _FRAMEWORKS or top in sys.stdlib_module_names or top == "builtins":
        return Origin.FRAMEWORK
    module = sys.modules.get(module_name)
    file = getattr(module, "__file__", None)
    if not file:
        # Built into the interpreter, or a namespace package: not project source.
        return Origin.INSTALLED if module is not None else Origin.FRAMEWORK
    parts = PurePath(file).parts
    if "site-packages" in parts or "dist-packages" in parts:
        return Origin.INSTALLED
    return Origin.PROJECT


@functools.cache
def _distributions() -> dict[str, list[str]]:
    return dict(importlib.metadata.packages_distributions())


@functools.cache
def distribution_of(module_name: str) -> str | None:
    """``"name==version"`` of the installed distribution providing ``module_name``."""
    names = _distributions().get(module_name.partition(".")[0])
    if not names:
        return None
    name = sorted(names)[0]
    try:
        return f"{name}=={importlib.metadata.version(name)}"
    except importlib.metadata.PackageNotFoundError:
        return name


# -- the module sources (parsed once per file per process) -------------------------------


@dataclasses.dataclass(frozen=True)
class _Source:
    tree: ast.Module
    #: Module-level statements binding each name, in file order.
    bindings: dict[str, list[ast.stmt]]
    #: Every lambda and function definition, for locating code objects.
    functions: list[ast.Lambda | ast.FunctionDef | ast.AsyncFunctionDef]


_SOURCES: dict[tuple[str, float, int], _Source] = {}
_SOURCES_LOCK = threading.Lock()


def _source_of(module: types.ModuleType) -> _Source | None:
    file = getattr(module, "__file__", None)
    if not file or not file.endswith(".py"):
        return None
    try:
        with open(file, "rb") as handle:
            raw = handle.read()
        stat = os.stat(file)
    except OSError:
        return None
    key = (file, stat.st_mtime, stat.st_size)
    with _SOURCES_LOCK:
        found = _SOURCES.get(key)
    if found is not None:
        return found
    tree = ast.parse(raw, filename=file)
    bindings: dict[str, list[ast.stmt]] = {}
    for statement in _module_level(tree.body):
        for name in _bound_names(statement):
            bindings.setdefault(name, []).append(statement)
    functions = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Lambda | ast.FunctionDef | ast.AsyncFunctionDef)
    ]
    found = _Source(tree, bindings, functions)
    with _SOURCES_LOCK:
        _SOURCES[key] = found
    return found


def _module_level(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """Statements that run at module level, inside ``if``/``try``/``with``/``for`` too."""
    for statement in body:
        yield statement
        if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            continue
        for field in ("body", "orelse", "finalbody"):
            yield from _module_level(getattr(statement, field, []) or [])
        for handler in getattr(statement, "handlers", []) or []:
            yield from _module_level(handler.body)
        for case in getattr(statement, "cases", []) or []:
            yield from _module_level(case.body)


def _bound_names(statement: ast.stmt) -> list[str]:
    if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return [statement.name]
    if isinstance(statement, ast.Import | ast.ImportFrom):
        return [
            alias.asname
            or (alias.name.partition(".")[0] if isinstance(statement, ast.Import) else alias.name)
            for alias in statement.names
        ]
    targets: list[ast.AST] = []
    if isinstance(statement, ast.Assign):
        targets = list(statement.targets)
    elif isinstance(statement, ast.AnnAssign | ast.AugAssign | ast.For | ast.AsyncFor):
        targets = [statement.target]
    elif isinstance(statement, ast.With | ast.AsyncWith):
        targets = [item.optional_vars for item in statement.items if item.optional_vars]
    elif isinstance(statement, ast.Expr | ast.If | ast.While):
        # Walrus assignments at module level.
        return [n.target.id for n in ast.walk(statement) if isinstance(n, ast.NamedExpr)]
    return [
        node.id
        for target in targets
        for node in ast.walk(target)
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store)
    ]


def _locate(
    source: _Source, code: types.CodeType
) -> ast.Lambda | ast.FunctionDef | ast.AsyncFunctionDef | None:
    """The definition in ``source`` that compiled to ``code``.

    Matched by the line where the definition starts (decorators included) and, when
    several start there (two lambdas on one line), by the smallest one whose span
    holds every instruction of ``code``.
    """
    name = code.co_name
    candidates = []
    for node in source.functions:
        first = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))])
        if first != code.co_firstlineno:
            continue
        if isinstance(node, ast.Lambda) != (name == "<lambda>"):
            continue
        if not isinstance(node, ast.Lambda) and node.name != name:
            continue
        candidates.append(node)
    if len(candidates) <= 1:
        return candidates[0] if candidates else None
    spans = [
        (line, column)
        for line, _end_line, column, _end_column in code.co_positions()
        if line is not None and column is not None
    ]

    def holds(node: ast.AST) -> bool:
        start = (node.lineno, node.col_offset)  # type: ignore[attr-defined]
        end = (node.end_lineno, node.end_col_offset)  # type: ignore[attr-defined]
        return all(start <= span <= end for span in spans)

    holding = [node for node in candidates if holds(node)]
    if not holding:
        return None
    return min(
        holding,
        key=lambda n: (n.end_lineno or 0, n.end_col_offset or 0),  # the innermost ends first
    )


def _class_node(source: _Source, qualname: str) -> ast.ClassDef | None:
    """The class statement for ``qualname`` (``Outer.Inner``; not inside functions)."""
    body: list[ast.stmt] = source.tree.body
    found: ast.ClassDef | None = None
    for part in qualname.split("."):
        matches = [s for s in _module_level(body) if isinstance(s, ast.ClassDef) and s.name == part]
        if not matches:
            return None
        found = matches[-1]  # a later definition replaces an earlier one
        body = found.body
    return found


def _reads(node: ast.AST) -> dict[str, set[tuple[str, ...]]]:
    """Names the code loads, each with the attribute paths read from it."""
    found: dict[str, set[tuple[str, ...]]] = {}
    for child in ast.walk(node):
        if isinstance(child, ast.Attribute):
            path: list[str] = []
            current: ast.AST = child
            while isinstance(current, ast.Attribute):
                path.append(current.attr)
                current = current.value
            if isinstance(current, ast.Name):
                found.setdefault(current.id, set()).add(tuple(reversed(path)))
        elif isinstance(child, ast.Name) and isinstance(child.ctx, ast.Load):
            found.setdefault(child.id, set())
    return found


def ast_structure(node: Any) -> Any:
    """A syntax tree as nested JSON, without positions, comments or string style.

    Empty fields are left out so that fields added by newer Pythons (for example
    ``type_params`` in 3.12) do not change the checksum of unchanged code.
    """
    if isinstance(node, ast.AST):
        fields = []
        for name, child in ast.iter_fields(node):
            if name in _COSMETIC_FIELDS or child is None or child == []:
                continue
            fields.append([name, ast_structure(child)])
        return [type(node).__name__, fields]
    if isinstance(node, list):
        return [ast_structure(item) for item in node]
    return _constant(node)


def _constant(value: Any) -> Any:
    """A literal's value, typed (``1``, ``1.0`` and ``True`` differ)."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return {"int": str(value)}
    if isinstance(value, float):
        return {"float": float.hex(value)}
    if isinstance(value, complex):
        return {"complex": [float.hex(value.real), float.hex(value.imag)]}
    if isinstance(value, bytes):
        return {"bytes": value.hex()}
    if value is Ellipsis:
        return {"ellipsis": True}
    raise TypeError(f"not a literal: {type(value).__qualname__}")


# -- canonical forms ---------------------------------------------------------------------


def _qualified(obj: Any) -> str:
    return f"{obj.__module__}.{obj.__qualname__}"


class _Canon:
    """Reduces one migration's values to canonical JSON, collecting the code it reaches."""

    def __init__(self, migration: migrations.Migration, *, reach: bool = True) -> None:
        self.migration = migration
        #: False: code outside the migration's own module counts by name only.
        self.reach = reach
        self.label = f"{migration.app_label}.{migration.name}"
        self.own_module = type(migration).__module__
        self.own_distribution = (
            distribution_of(self.own_module)
            if module_origin(self.own_module) is Origin.INSTALLED
            else None
        )
        #: Definitions reached, by qualified name (a visited set: cycles end here).
        self.code: dict[str, Any] = {}
        #: Every module whose code was referred to, by name.
        self.modules: set[str] = {self.own_module}
        self._path: list[int] = []  # objects being reduced, to refuse a cycle of values

    def fail(self, value: Any, why: str) -> ChecksumUnavailable:
        return ChecksumUnavailable(
            f"Cannot compute the checksum of {self.label}: {why} (a "
            f"{type(value).__module__}.{type(value).__qualname__}). A checksum must be the "
            "same in every process, so such values cannot be hashed. Pass a plain value "
            "(string, number, list, dict), a deconstructible object or a module-level "
            "function instead."
        )

    # Operations ----------------------------------------------------------------------

    def operation(self, op: Any) -> Any:
        cls = type(op)
        entry: dict[str, Any] = {"class": self.reference(cls)}
        if isinstance(op, migrations.RunSQL):
            entry.update(
                sql=self.sql(op.sql),
                reverse_sql=self.sql(op.reverse_sql),
                state_operations=[self.operation(o) for o in op.state_operations],
                hints=self.value(op.hints),
                elidable=bool(op.elidable),
            )
            if cls is migrations.RunSQL:
                return entry
        _name, args, kwargs = op.deconstruct()
        entry["args"] = [self.value(a) for a in args]
        entry["kwargs"] = {str(k): self.value(v) for k, v in sorted(kwargs.items())}
        return entry

    # SQL -------------------------------------------------------------------------------

    def sql(self, sql: Any) -> Any:
        if sql is None:
            return None
        if isinstance(sql, str):
            return {"statement": self.statement(sql, None)}
        if isinstance(sql, list | tuple):
            statements = []
            for item in sql:
                if isinstance(item, list | tuple) and len(item) == 2:
                    statements.append(self.statement(item[0], item[1]))
                elif isinstance(item, list | tuple):
                    # Django refuses anything but a (sql, params) pair when it runs.
                    statements.append({"malformed": self.value(item)})
                else:
                    statements.append(self.statement(item, None))
            return {"statements": statements}
        return {"value": self.value(sql)}

    def statement(self, sql: Any, params: Any) -> Any:
        if not isinstance(sql, str):
            return {"value": self.value(sql), "params": self.value(params)}
        text, names = sql, None
        if params is not None:
            # With parameters, the driver replaces placeholders (everywhere in the text,
            # as psycopg does) and unescapes %%; parse what the server receives.
            text, names = _server_text(sql)
        return {"sql": _parsed(text), "params": self.value(params), "placeholders": names}

    # Values ----------------------------------------------------------------------------

    def value(self, value: Any) -> Any:
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, enum.Enum):
            return {"enum": self.reference(type(value)), "name": value.name}
        if isinstance(value, str) and hasattr(value, "setting_name"):
            # A SettingsReference: the migration means "whatever settings.X is".
            return {"setting": str(value.setting_name)}
        if type(value) in _LITERALS:
            return _constant(value)
        if isinstance(value, _LITERALS):
            # A subclass (Django's SafeString, ...): its class is part of the meaning.
            base = next(t for t in _LITERALS if isinstance(value, t))
            return {"value": _constant(base(value)), "type": self.reference(type(value))}
        if isinstance(value, decimal.Decimal):
            return {"decimal": str(value)}
        if isinstance(value, datetime.datetime | datetime.date | datetime.time):
            return {
                type(value).__name__: value.isoformat(),
                "tz": self.tz(getattr(value, "tzinfo", None)),
            }
        if isinstance(value, datetime.timedelta):
            return {"timedelta": [value.days, value.seconds, value.microseconds]}
        if isinstance(value, uuid.UUID):
            return {"uuid": str(value)}
        if isinstance(value, PurePath):
            return {"path": value.as_posix(), "type": type(value).__name__}
        if isinstance(value, range):
            return {"range": [value.start, value.stop, value.step]}
        if isinstance(value, re.Pattern):
            return {"regex": self.value(value.pattern), "flags": int(value.flags)}
        if isinstance(value, list | tuple | set | frozenset | dict):
            return self.container(value)
        if isinstance(value, type):
            return self.reference(value)
        if isinstance(value, types.ModuleType):
            return self.module_reference(value)
        if isinstance(value, types.MethodType):
            return {"method": self.reference(value.__func__), "self": self.value(value.__self__)}
        if isinstance(value, types.FunctionType | types.BuiltinFunctionType):
            return self.reference(value)
        if isinstance(value, staticmethod | classmethod):
            return {type(value).__name__: self.value(value.__func__)}
        if isinstance(value, functools.partial):
            return {
                "partial": self.value(value.func),
                "args": self.value(value.args),
                "keywords": self.value(value.keywords),
            }
        if isinstance(value, Promise):
            # A lazy translation: the message as written, not today's language.
            _unpickle, (func, args, kw, *_types) = value.__reduce__()  # type: ignore[misc]
            return {"lazy": self.reference(func), "args": self.value(args), "kw": self.value(kw)}
        if isinstance(value, Operation):
            return self.operation(value)
        if isinstance(value, ModelState):
            return {"model_state": self.value_structure(value)}
        deconstruct = getattr(value, "deconstruct", None)
        if callable(deconstruct):
            return self.deconstructed(value, deconstruct())
        return self.value_structure(value)

    def tz(self, tz: datetime.tzinfo | None) -> Any:
        if tz is None:
            return None
        if isinstance(tz, datetime.timezone):
            return {"offset": self.value(tz.utcoffset(None)), "name": tz.tzname(None)}
        key = getattr(tz, "key", None)  # zoneinfo.ZoneInfo
        if isinstance(key, str):
            return {"zone": key}
        return self.value_structure(tz)

    def container(self, value: Any) -> Any:
        marker = id(value)
        if marker in self._path:
            raise self.fail(value, "a container holds itself")
        self._path.append(marker)
        try:
            if isinstance(value, dict):
                items = [[self.value(k), self.value(v)] for k, v in value.items()]
                return {"dict": sorted(items, key=_dumps)}
            items = [self.value(item) for item in value]
            if isinstance(value, set | frozenset):
                return {type(value).__name__: sorted(items, key=_dumps)}
            kind = "list" if isinstance(value, list) else "tuple"
            if type(value) not in (list, tuple):
                # Named tuples and list subclasses: their class is part of the meaning.
                return {kind: items, "type": self.reference(type(value))}
            return {kind: items}
        finally:
            self._path.pop()

    def deconstructed(self, value: Any, parts: Any) -> Any:
        # Fields deconstruct to (name, path, args, kwargs); managers to (as_manager,
        # path, queryset_path, args, kwargs); other deconstructible values to (path,
        # args, kwargs).
        if len(parts) == 5:
            path, extra = parts[1], parts[2]
        else:
            path, extra = parts[-3], None
        args, kwargs = parts[-2], parts[-1]
        return {
            "path": str(path),
            "queryset": None if extra is None else str(extra),
            "args": [self.value(a) for a in args],
            "kwargs": {str(k): self.value(v) for k, v in sorted(kwargs.items())},
        }

    def value_structure(self, value: Any) -> Any:
        """An object without a canonical form: its class and its attributes."""
        attributes: dict[str, Any] = {}
        if hasattr(value, "__dict__"):
            attributes.update(vars(value))
        for cls in type(value).__mro__:
            for slot in getattr(cls, "__slots__", ()):
                if isinstance(slot, str) and slot not in ("__dict__", "__weakref__"):
                    with contextlib.suppress(AttributeError):
                        attributes[slot] = getattr(value, slot)
        if not attributes and not hasattr(value, "__dict__"):
            if type(value) is object:
                return {"object": "builtins.object"}
            raise self.fail(value, "a value with no attributes and no canonical form")
        marker = id(value)
        if marker in self._path:
            raise self.fail(value, "a value that refers to itself")
        self._path.append(marker)
        try:
            return {
                "object": self.reference(type(value)),
                "attributes": {str(k): self.value(v) for k, v in sorted(attributes.items())},
            }
        finally:
            self._path.pop()

    # Code ------------------------------------------------------------------------------

    def origin(self, module_name: str) -> Origin:
        self.modules.add(module_name)
        if module_name == self.own_module:
            return Origin.PROJECT  # the migration's own file, wherever it is installed
        if not self.reach:
            return Origin.FRAMEWORK  # the definition checksum: by qualified name only
        return module_origin(module_name)

    def external(self, qualified: str, module_name: str) -> Any:
        """Code beyond the project: its name, plus distribution and version if installed."""
        if self.origin(module_name) is not Origin.INSTALLED:
            return {"ref": qualified}
        distribution = distribution_of(module_name)
        if distribution is not None and distribution == self.own_distribution:
            return {"ref": qualified}
        return {"ref": qualified, "distribution": distribution}

    def reference(self, obj: Any) -> Any:
        """A function or class: by name, and its definition when it is project code."""
        module_name = getattr(obj, "__module__", None)
        qualname = getattr(obj, "__qualname__", None)
        if not isinstance(module_name, str) or not isinstance(qualname, str):
            raise self.fail(obj, "code that does not say where it is defined")
        qualified = f"{module_name}.{qualname}"
        if self.origin(module_name) is not Origin.PROJECT:
            return self.external(qualified, module_name)
        module = sys.modules.get(module_name)
        source = _source_of(module) if module is not None else None
        if source is None or module is None:
            raise self.fail(obj, f"project code whose source cannot be read ({qualified})")
        if isinstance(obj, type):
            if qualified not in self.code:
                self.code[qualified] = None  # visiting
                node = _class_node(source, qualname)
                if node is None:
                    raise self.fail(obj, f"a class whose definition is not found ({qualified})")
                self.code[qualified] = self.definition(module, node)
            return {"ref": qualified}
        code = getattr(obj, "__code__", None)
        if not isinstance(code, types.CodeType):
            raise self.fail(obj, f"callable project code without Python source ({qualified})")
        anonymous = "<" in qualname  # lambdas and functions defined inside functions
        if not anonymous and qualified in self.code:
            return {"ref": qualified}
        if not anonymous:
            self.code[qualified] = None  # visiting
        function = _locate(source, code)
        if function is None:
            raise self.fail(obj, f"a function whose definition is not found ({qualified})")
        entry = self.definition(module, function)
        closure = getattr(obj, "__closure__", None) or ()
        if closure:
            cells = {}
            for name, cell in zip(code.co_freevars, closure, strict=True):
                try:
                    cells[name] = self.value(cell.cell_contents)
                except ValueError:  # an empty cell
                    cells[name] = {"unbound": True}
            entry["closure"] = cells
        if anonymous:
            return {"inline": qualname.rpartition(".")[2], "definition": entry}
        self.code[qualified] = entry
        return {"ref": qualified}

    def module_reference(self, module: types.ModuleType) -> Any:
        if self.origin(module.__name__) is Origin.PROJECT:
            return {"module": module.__name__}
        return {"module": self.external(module.__name__, module.__name__)}

    def definition(self, module: types.ModuleType, node: ast.AST) -> dict[str, Any]:
        """A definition's syntax tree and what the module-level names it reads stand for."""
        reads = {}
        for name, paths in sorted(_reads(node).items()):
            found = self.resolve(module, name, paths)
            if found is not None:
                reads[name] = found
        return {"ast": ast_structure(node), "reads": reads}

    def resolve(self, module: types.ModuleType, name: str, paths: set[tuple[str, ...]]) -> Any:
        """What module-level ``name`` of ``module`` is, for code that reads it."""
        namespace = vars(module)
        if name not in namespace:
            if hasattr(builtins, name):
                return {"builtin": name}
            return None  # a local name of the code
        value = namespace[name]
        if isinstance(value, types.ModuleType):
            entry = self.module_reference(value)
            if self.origin(value.__name__) is Origin.PROJECT:
                attributes = {}
                for first in sorted({path[0] for path in paths if path}):
                    deeper = {path[1:] for path in paths if path and path[0] == first}
                    found = self.resolve(value, first, deeper)
                    if found is not None:
                        attributes[first] = found
                entry["attributes"] = attributes
            return entry
        if isinstance(value, type | types.FunctionType):
            return self.reference(value)
        key = f"{module.__name__}.{name}"
        if key in self.code:
            return {"ref": key}
        source = _source_of(module)
        statements = source.bindings.get(name, []) if source is not None else []
        imports = [s for s in statements if isinstance(s, ast.ImportFrom)]
        if statements and len(imports) == len(statements):
            return self.imported(module, imports[-1], name, paths)
        if not statements:
            # Bound without a statement that says so (a star import, ``globals()``).
            return {"value": self.value(value)}
        self.code[key] = None  # visiting
        self.code[key] = {
            "binding": [self.definition(module, statement) for statement in statements]
        }
        return {"ref": key}

    def imported(
        self,
        module: types.ModuleType,
        statement: ast.ImportFrom,
        name: str,
        paths: set[tuple[str, ...]],
    ) -> Any:
        """``from X import name``: follow it into X when X is project code."""
        alias = next(a for a in statement.names if (a.asname or a.name) == name)
        package = module.__name__ if hasattr(module, "__path__") else module.__package__
        try:
            source_module = importlib.util.resolve_name(
                "." * statement.level + (statement.module or ""), package
            )
        except (ImportError, ValueError):
            source_module = statement.module or ""
        imported_from = sys.modules.get(source_module)
        if imported_from is not None and self.origin(source_module) is Origin.PROJECT:
            found = self.resolve(imported_from, alias.name, paths)
            if found is not None:
                return found
        qualified = f"{source_module}.{alias.name}"
        if self.origin(source_module) is Origin.PROJECT:
            return {"ref": qualified}
        return self.external(qualified, source_module)


def _server_text(sql: str) -> tuple[str, list[str | None]]:
    """``sql`` with the driver's placeholders as ``$n``, and the parameter each stands for."""
    names: list[str | None] = []
    numbers: dict[str, int] = {}

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "%%":
            return "%"
        name = match.group(1)
        if name is None:
            names.append(None)
            return f"${len(names)}"
        if name not in numbers:
            names.append(name)
            numbers[name] = len(names)
        return f"${numbers[name]}"

    return _PLACEHOLDER.sub(replace, sql), names


def _parsed(sql: str) -> Any:
    try:
        from pglast.parser import ParseError, parse_sql_json
    except ImportError:  # pragma: no cover - pglast is a hard dependency
        return {"text": sql}
    try:
        tree = json.loads(parse_sql_json(sql))
    except ParseError:
        # Kept as written: collapsing its whitespace could hide a change inside a literal.
        return {"text": sql}
    return {"tree": _strip_keys(tree.get("stmts", []), _SQL_POSITION_KEYS)}


def _strip_keys(value: Any, keys: frozenset[str]) -> Any:
    if isinstance(value, dict):
        return {k: _strip_keys(v, keys) for k, v in value.items() if k not in keys}
    if isinstance(value, list):
        return [_strip_keys(v, keys) for v in value]
    return value


# -- comparing with recorded checksums ---------------------------------------------------


class Comparison(enum.Enum):
    """How a recorded checksum stands against the migration's file here."""

    #: The file is the one recorded.
    SAME = "same"
    #: The file changed since the checksum was recorded.
    EDITED = "edited"
    #: A version 1 checksum that matches the file: record the current checksum instead.
    UPGRADED = "upgraded"
    #: A version 1 checksum that held a memory address: it cannot be verified.
    UNVERIFIABLE = "unverifiable"


def version_of(checksum: str) -> int:
    """The algorithm version a stored checksum was computed with (0: not a checksum)."""
    if checksum.startswith(PREFIX):
        return VERSION
    if re.fullmatch(r"sha256:[0-9a-f]{64}", checksum):
        return 1
    return 0


def compare(recorded: str, migration: migrations.Migration, current: str) -> Comparison:
    """Whether ``recorded`` (any version) still describes ``migration``'s file.

    ``current`` is the file's checksum now. A version 1 checksum is compared with
    version 1 of the file now, with and without the operations Django's
    ``pre_migrate`` handlers insert (version 1 was taken after them).
    """
    if recorded == current:
        return Comparison.SAME
    if version_of(recorded) != 1:
        return Comparison.EDITED
    variants = v1_payloads(migration)
    if any(checksum_v1.checksum_of_payload(p) == recorded for p in variants):
        return Comparison.UPGRADED
    if any(_MEMORY_ADDRESS.search(p) for p in variants):
        return Comparison.UNVERIFIABLE
    return Comparison.EDITED


# ``<Foo object at 0x7f3a…>``: version 1 fell back to repr(), which holds one.
_MEMORY_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def v1_payloads(migration: migrations.Migration) -> list[str]:
    """What version 1 hashed for this file: as defined, and as ``pre_migrate`` left it."""
    defined = defined_operations(migration)
    payloads = [checksum_v1.payload(migration, defined)]
    injected = _with_contenttypes_renames(migration, defined)
    if injected is not None:
        payloads.append(checksum_v1.payload(migration, injected))
    return payloads


def _with_contenttypes_renames(
    migration: migrations.Migration, operations: list[Any]
) -> list[Any] | None:
    """``operations`` as ``django.contrib.contenttypes`` changes them at ``pre_migrate``."""
    from django.apps import apps

    if not apps.is_installed("django.contrib.contenttypes"):
        return None
    if not any(isinstance(op, migrations.RenameModel) for op in operations):
        return None
    from django.contrib.contenttypes.management import RenameContentType

    result = list(operations)
    inserts = [
        (index + 1, RenameContentType(migration.app_label, op.old_name_lower, op.new_name_lower))
        for index, op in enumerate(operations)
        if isinstance(op, migrations.RenameModel)
    ]
    # The same positions inject_rename_contenttypes_operations() computes.
    for inserted, (index, op) in enumerate(inserts):
        result.insert(inserted + index, op)
    return result
