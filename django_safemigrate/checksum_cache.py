"""Checksums of applied migrations, kept between runs so a deploy does not hash them all again.

Every deploy compares each applied migration's checksum with the ledger's record; on a long
history that is most of what the check costs. The cache keeps, per project, each migration's
full checksum together with everything it was computed from:

* the SHA-256 of the migration file's bytes;
* the SHA-256 of the bytes of every project module the checksum reached or the migration
  module refers to, transitively (helpers, constants, custom fields), each by its path;
* the environment: Python, Django, django_safemigrate, pglast and the checksum code itself,
  the settings module's file and the values of the settings (connection details of
  ``DATABASES`` aside: name, host, port, user and password do not change what a
  migration file defines).

An entry is used only when all of these are the same byte for byte; anything else is a miss
and the checksum is computed as without a cache. File times and sizes are never trusted: an
edit that keeps a file's size and modification time is still a different SHA-256. A migration
that refers to code of another installed package (outside the standard library, Django and
django_safemigrate) counts that code as the checksum does, by its distribution and version
(``django-tenants==4.0.1``): the entry is used only while the same version is installed, and
one whose package cannot be told is never cached. Nor is one whose module was imported from
bytecode that does not match its source (a stale ``.pyc``): what the process loaded is then
not what the file says.

The cache lives in ``$XDG_CACHE_HOME/django-safemigrate/`` (``~/.cache/django-safemigrate/``
without it), one JSON file per project, replaced atomically. A missing, unreadable or corrupt
file is ignored, and a cache that cannot be written is skipped: the cache never causes an
error. ``SAFEMIGRATE_CHECKSUM_CACHE=off`` in the environment turns it off.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.metadata
import importlib.util
import json
import marshal
import os
import platform
import re
import sys
import tempfile
import types
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from django.db import migrations

from django_safemigrate.checksum import (
    PREFIX,
    Origin,
    checksum_and_modules,
    distribution_of,
    module_origin,
)

#: Set to ``off`` (or ``0``, ``false``, ``no``) to turn the cache off.
ENVIRONMENT_VARIABLE = "SAFEMIGRATE_CHECKSUM_CACHE"
FORMAT = 1
DIRECTORY_NAME = "django-safemigrate"
_OFF = frozenset({"off", "0", "false", "no"})
#: Keys of a ``DATABASES`` entry that say where the database is, not what migrations mean.
#: Connection details, and the schema django-tenants points the connection at (it changes
#: with every schema a fleet run migrates): none changes what a migration file defines.
_CONNECTION_KEYS = frozenset({"NAME", "HOST", "PORT", "USER", "PASSWORD", "SCHEMA"})
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")
#: In an entry's files, in place of a path: a module of another installed distribution,
#: which the checksum counts by its distribution and version, not by its code.
_INSTALLED = "installed"


def enabled() -> bool:
    return os.environ.get(ENVIRONMENT_VARIABLE, "").strip().lower() not in _OFF


def cache_directory() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / DIRECTORY_NAME


def _sha256_file(path: str) -> str | None:
    try:
        with open(path, "rb") as handle:
            return hashlib.sha256(handle.read()).hexdigest()
    except OSError:
        return None


@functools.cache
def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "-"


def _settings_module() -> types.ModuleType | None:
    name = os.environ.get("DJANGO_SETTINGS_MODULE", "")
    return sys.modules.get(name) if name else None


def _settings_fingerprint() -> str:
    """The SHA-256 of every setting's value (connection details of DATABASES aside)."""
    from django.conf import settings

    values = []
    for name in sorted(dir(settings)):
        if not name.isupper():
            continue
        value = getattr(settings, name, None)
        if name == "DATABASES" and isinstance(value, dict):
            value = {
                alias: {k: v for k, v in sorted(entry.items()) if k not in _CONNECTION_KEYS}
                if isinstance(entry, dict)
                else entry
                for alias, entry in sorted(value.items())
            }
        try:
            text = repr(value)
        except Exception:
            text = f"<unrepresentable {os.urandom(8).hex()}>"
        values.append(f"{name}={_ADDRESS.sub('', text)}")
    return hashlib.sha256("\n".join(values).encode()).hexdigest()


def environment() -> dict[str, str]:
    """What every cached checksum depends on besides the files of the migration."""
    checksum_module = sys.modules["django_safemigrate.checksum"]
    settings_module = _settings_module()
    settings_file = getattr(settings_module, "__file__", None) or ""
    return {
        "format": str(FORMAT),
        "algorithm": PREFIX,
        "checksum_code": _sha256_file(checksum_module.__file__ or "") or "-",
        "python": f"{platform.python_implementation()} {sys.version}",
        "django": _version("Django"),
        "django_safemigrate": _version("django_safemigrate"),
        "pglast": _version("pglast"),
        "settings_module": os.environ.get("DJANGO_SETTINGS_MODULE", ""),
        "settings_file": _sha256_file(settings_file) or "-" if settings_file else "-",
        "settings": _settings_fingerprint(),
    }


def _project_key() -> str:
    settings_module = _settings_module()
    where = os.path.realpath(getattr(settings_module, "__file__", None) or os.getcwd())
    name = os.environ.get("DJANGO_SETTINGS_MODULE", "")
    return hashlib.sha256(f"{name}\0{where}".encode()).hexdigest()[:24]


def _module_file(name: str) -> str | None:
    module = sys.modules.get(name)
    file = getattr(module, "__file__", None)
    return file if isinstance(file, str) and file.endswith(".py") else None


def _framework(name: str) -> bool:
    top = name.partition(".")[0]
    return top in ("django", "django_safemigrate", "builtins") or top in sys.stdlib_module_names


def _referred_modules(module: types.ModuleType) -> set[str]:
    """The modules that ``module``'s global names are, or come from."""
    found = set()
    for value in list(vars(module).values()):
        if isinstance(value, types.ModuleType):
            found.add(value.__name__)
            continue
        try:
            name = getattr(value, "__module__", None)
        except Exception:
            continue
        if isinstance(name, str):
            found.add(name)
    return found


def _bytecode_matches(path: str, raw: bytes) -> bool:
    """False when the module may have been imported from a ``.pyc`` not compiled from ``raw``."""
    try:
        cached = importlib.util.cache_from_source(path)
    except (NotImplementedError, ValueError):
        return True
    try:
        with open(cached, "rb") as handle:
            data = handle.read()
    except OSError:
        return True  # no bytecode: the module was compiled from its source
    if data[:4] != importlib.util.MAGIC_NUMBER:
        return True  # bytecode of another Python: ignored by the import system
    try:
        loaded = marshal.loads(data[16:])
        compiled = compile(raw, path, "exec", dont_inherit=True)
    except Exception:
        return False
    return bool(loaded == compiled)


class ChecksumCache:
    """The cached checksums of one project; :meth:`checksum` is a drop-in for
    :func:`~django_safemigrate.checksum.migration_checksum`."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.environment = environment() if path is not None else {}
        self.entries: dict[str, Any] = {}
        self.dirty = False
        self._hashes: dict[str, str | None] = {}
        self._verified: dict[str, bool] = {}
        if path is not None:
            self.entries = self._read(path)

    @classmethod
    def for_project(cls) -> ChecksumCache:
        """The project's cache, or one that caches nothing when turned off."""
        if not enabled():
            return cls(None)
        try:
            return cls(cache_directory() / f"checksums-{_project_key()}.json")
        except Exception:
            return cls(None)

    def _read(self, path: Path) -> dict[str, Any]:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError, UnicodeDecodeError):
            return {}
        if not isinstance(data, dict) or data.get("environment") != self.environment:
            return {}
        entries = data.get("entries")
        return entries if isinstance(entries, dict) else {}

    def _hash(self, path: str) -> str | None:
        if path not in self._hashes:
            self._hashes[path] = _sha256_file(path)
        return self._hashes[path]

    def _hit(self, entry: Any) -> str | None:
        """The cached checksum, when every file it depends on is as it was."""
        if not isinstance(entry, dict):
            return None
        checksum, files = entry.get("checksum"), entry.get("files")
        if not isinstance(checksum, str) or not isinstance(files, dict) or not files:
            return None
        for name, recorded in files.items():
            if not isinstance(recorded, list) or len(recorded) != 2:
                return None
            path, digest = recorded
            if path == _INSTALLED:
                if module_origin(name) is not Origin.INSTALLED or distribution_of(name) != digest:
                    return None
            elif _module_file(name) != path or self._hash(path) != digest:
                return None
        return checksum

    def checksum(self, migration: migrations.Migration, expected: str | None = None) -> str:
        """The migration's checksum: the cached one when it is ``expected`` (or no value is
        expected) and every file it depends on is unchanged, else computed (and cached).

        A cached value that differs from ``expected`` is never reported as it is: it is
        computed again, so that what a run refuses or re-baselines is always computed now.
        """
        key = f"{migration.app_label}.{migration.name}"
        if self.path is not None:
            with contextlib.suppress(Exception):
                found = self._hit(self.entries.get(key))
                if found is not None and (expected is None or found == expected):
                    return found
        checksum, modules = checksum_and_modules(migration)
        if self.path is not None:
            files = None
            with contextlib.suppress(Exception):
                files = self._files(type(migration).__module__, modules)
            if files is not None:
                self.entries[key] = {"checksum": checksum, "files": files}
                self.dirty = True
            else:
                self.entries.pop(key, None)
        return checksum

    def checker(self, recorded: Mapping[tuple[str, str], str]) -> Callable[[Any], str]:
        """:meth:`checksum`, expecting the ledger's ``recorded`` checksum of each migration."""

        def checksum(migration: migrations.Migration) -> str:
            return self.checksum(migration, recorded.get((migration.app_label, migration.name)))

        return checksum

    def _files(self, own: str, modules: frozenset[str]) -> dict[str, list[str]] | None:
        """Each module the checksum depends on, with its file and that file's SHA-256;
        ``None`` when it depends on code that is not hashed here."""
        files: dict[str, list[str]] = {}
        pending = [own, *sorted(modules)]
        seen: set[str] = set()
        while pending:
            name = pending.pop()
            if name in seen:
                continue
            seen.add(name)
            origin = Origin.PROJECT if name == own else module_origin(name)
            if origin is Origin.INSTALLED:
                distribution = distribution_of(name)
                if distribution is None:
                    return None  # the checksum names it without a version: no telling
                files[name] = [_INSTALLED, distribution]
                continue
            if origin is Origin.FRAMEWORK:
                if name not in sys.modules and not _framework(name):
                    return None  # code of a module the import system does not know
                continue
            path = _module_file(name)
            module = sys.modules.get(name)
            if path is None or module is None or not self._verify(path):
                return None
            digest = self._hash(path)
            if digest is None:
                return None
            files[name] = [path, digest]
            pending.extend(_referred_modules(module) - seen)
        return files

    def _verify(self, path: str) -> bool:
        if path not in self._verified:
            try:
                with open(path, "rb") as handle:
                    raw = handle.read()
            except OSError:
                self._verified[path] = False
            else:
                same = hashlib.sha256(raw).hexdigest() == self._hash(path)
                self._verified[path] = same and _bytecode_matches(path, raw)
        return self._verified[path]

    def save(self) -> None:
        """Write the cache if anything was added, atomically; never raises."""
        if self.path is None or not self.dirty:
            return
        with contextlib.suppress(Exception):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            text = json.dumps(
                {"environment": self.environment, "entries": self.entries},
                sort_keys=True,
                separators=(",", ":"),
            )
            handle, temporary = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
            try:
                with os.fdopen(handle, "w", encoding="utf-8") as out:
                    out.write(text)
                os.replace(temporary, self.path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(temporary)
                raise
            self.dirty = False
