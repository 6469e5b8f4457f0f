"""Version 1 of the migration checksum, frozen: for comparing records written with it.

Ledgers, reviews and lockfiles written before checksums carried their algorithm's
version hold ``sha256:<hex>`` strings computed by this code. It stays exactly as it
was so that such a record can still be told apart from an edit; new checksums are
never computed with it (see :mod:`django_safemigrate.checksum`). Do not change it:
any change would make unchanged history look edited, or hide an edit.

It was taken after ``pre_migrate`` handlers ran (so it may include operations they
inserted), and its fallback for values without a migration rendering is ``repr()``,
which can hold a memory address: :func:`payload` lets callers see that.
"""

from __future__ import annotations

import ast
import enum
import hashlib
import inspect
import json
import textwrap
from collections.abc import Callable
from typing import Any

from django.db import migrations
from django.db.migrations.serializer import serializer_factory
from django.db.migrations.state import ModelState

ALGORITHM = "sha256"

# Syntax-tree fields that describe where code was written, not what it does.
_POSITION_FIELDS = {"lineno", "col_offset", "end_lineno", "end_col_offset", "type_comment"}
# Parse-tree keys pglast emits for source positions.
_SQL_POSITION_KEYS = {"location", "stmt_location", "stmt_len"}


def migration_checksum(migration: migrations.Migration) -> str:
    """``"sha256:<hex>"`` of the migration's meaning, as version 1 computed it."""
    return checksum_of_payload(payload(migration, list(migration.operations)))


def checksum_of_payload(encoded: str) -> str:
    return f"{ALGORITHM}:{hashlib.sha256(encoded.encode()).hexdigest()}"


def payload(migration: migrations.Migration, operations: list[Any]) -> str:
    """The text version 1 hashed, for ``migration`` with these ``operations``."""
    module = type(migration).__module__
    data = {
        "operations": [_canonical(op, module) for op in operations],
        "dependencies": sorted(_dependency(d) for d in migration.dependencies),
        "replaces": sorted(list(r) for r in migration.replaces),
        "run_before": sorted(list(r) for r in migration.run_before),
        "initial": bool(migration.initial),
        "atomic": bool(migration.atomic),
    }
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def _dependency(dependency: Any) -> list[str]:
    # ``("auth", "__first__")`` and swappable dependencies (``SwappableTuple``) both
    # deconstruct to plain strings; the swappable setting's name is what the file says.
    setting = getattr(dependency, "setting", None)
    app_label = f"settings.{setting}" if setting else str(dependency[0])
    return [app_label, str(dependency[1])]


def _canonical(value: Any, module: str) -> Any:
    """A JSON-compatible structure that stands for ``value``'s meaning."""
    if value is None or isinstance(value, bool | int | str):
        if isinstance(value, str) and hasattr(value, "setting_name"):
            # A SettingsReference: the migration means "whatever settings.X is".
            return {"setting": value.setting_name}
        return value
    if isinstance(value, float):
        return {"float": repr(value)}
    if isinstance(value, migrations.RunSQL):
        return {
            "op": "RunSQL",
            "sql": _canonical_sql(value.sql),
            "reverse_sql": _canonical_sql(value.reverse_sql),
            "state_operations": [_canonical(op, module) for op in value.state_operations],
            "hints": _canonical(value.hints, module),
            "elidable": value.elidable,
        }
    if isinstance(value, list | tuple):
        return [_canonical(item, module) for item in value]
    if isinstance(value, set | frozenset):
        items = [_canonical(item, module) for item in value]
        return {"set": sorted(items, key=lambda item: json.dumps(item, sort_keys=True))}
    if isinstance(value, dict):
        return {"dict": [[_canonical(k, module), _canonical(v, module)] for k, v in value.items()]}
    if isinstance(value, enum.Enum):
        return {"enum": f"{type(value).__module__}.{type(value).__qualname__}.{value.name}"}
    if isinstance(value, ModelState):
        return {"model_state": _canonical(value.__dict__, module)}
    if isinstance(value, type):
        return {"class": f"{value.__module__}.{value.__qualname__}"}
    if inspect.isfunction(value) or inspect.ismethod(value):
        return _canonical_code(value, module)
    deconstruct = getattr(value, "deconstruct", None)
    if callable(deconstruct) and not isinstance(value, type):
        parts = deconstruct()
        # Operations deconstruct to (name, args, kwargs); fields to (name, path,
        # args, kwargs); managers to (as_manager, path, queryset_path, args, kwargs);
        # other deconstructible values to (path, args, kwargs).
        path = parts[1] if len(parts) == 5 else parts[-3]
        extra = str(parts[2]) if len(parts) == 5 else None
        args, kwargs = parts[-2], parts[-1]
        return {
            "path": str(path),
            "queryset": extra,
            "args": [_canonical(a, module) for a in args],
            "kwargs": {k: _canonical(v, module) for k, v in sorted(kwargs.items())},
        }
    return {"value": _serialized(value)}


def _serialized(value: Any) -> str:
    """Django's own migration-file rendering of a value (Decimal, datetime, UUID, Q …)."""
    try:
        text, _imports = serializer_factory(value).serialize()
    except ValueError:
        text = f"{type(value).__module__}.{type(value).__qualname__}:{value!r}"
    return str(text)


def _canonical_sql(sql: Any) -> Any:
    if sql is None:
        return None
    if isinstance(sql, list | tuple):
        return [_canonical_sql(item) for item in sql]
    if not isinstance(sql, str):
        # (sql, params) pairs, or RunSQL.noop.
        return _canonical(sql, "")
    try:
        from pglast.parser import ParseError, parse_sql_json
    except ImportError:  # pragma: no cover - pglast is a hard dependency
        return " ".join(sql.split())
    try:
        tree = json.loads(parse_sql_json(sql))
    except ParseError:
        return {"unparsed": " ".join(sql.split())}
    return {"tree": _strip_keys(tree.get("stmts", []), _SQL_POSITION_KEYS)}


def _strip_keys(value: Any, keys: set[str]) -> Any:
    if isinstance(value, dict):
        return {k: _strip_keys(v, keys) for k, v in value.items() if k not in keys}
    if isinstance(value, list):
        return [_strip_keys(v, keys) for v in value]
    return value


def _canonical_code(func: Callable[..., Any], module: str) -> Any:
    qualname = f"{func.__module__}.{func.__qualname__}"
    if func.__module__ != module:
        # Imported code: the migration means "call that function", not its current body.
        return {"code": qualname}
    try:
        source = textwrap.dedent(inspect.getsource(func))
        tree: ast.AST = ast.parse(source)
    except (OSError, TypeError, SyntaxError):
        # No source at hand (e.g. a lambda inside an expression that does not parse alone).
        return {"code": qualname, "bytecode": func.__code__.co_code.hex()}
    return {"code": qualname, "ast": _ast_structure(tree)}


def _ast_structure(node: Any) -> Any:
    """A syntax tree as nested lists, without positions and without empty fields.

    Empty fields are left out so that fields added by newer Pythons (for example
    ``type_params`` in 3.12) do not change the checksum of unchanged code.
    """
    if isinstance(node, ast.AST):
        fields = []
        for name, child in ast.iter_fields(node):
            if name in _POSITION_FIELDS or child is None or child == []:
                continue
            fields.append([name, _ast_structure(child)])
        return [type(node).__name__, fields]
    if isinstance(node, list):
        return [_ast_structure(item) for item in node]
    if isinstance(node, bytes):
        return node.hex()
    if isinstance(node, float | complex):
        return repr(node)
    return node
