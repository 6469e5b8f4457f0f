"""The lockfile: the checksum of every released migration, committed with the code.

One line per migration, sorted, so that two branches adding migrations merge
without conflicts::

    # django_safemigrate lockfile: checksums of released migrations. ...
    shop.0001_initial sha256:5f0c…

CI compares it with the migration files and catches an edited released
migration without any database (SM904); ``checkmigrations --update-lockfile``
rewrites it after a release.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from django.conf import settings as django_settings

from django_safemigrate.exceptions import UsageError

Key = tuple[str, str]

HEADER = (
    "# django_safemigrate lockfile: checksums of released migrations.\n"
    "# Written by 'manage.py checkmigrations --update-lockfile'; commit it. "
    "One line per migration.\n"
)


def default_path(configured: str | None) -> Path:
    if configured:
        return Path(configured)
    base = getattr(django_settings, "BASE_DIR", None)
    return Path(base if base else os.getcwd()) / "migrations.lock"


def read(path: Path) -> dict[Key, str]:
    """The lockfile's entries; a missing file has none. Malformed lines are errors."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    entries: dict[Key, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        if len(parts) != 2 or "." not in parts[0] or not parts[1].startswith("sha256:"):
            raise UsageError(
                f"{path}:{number}: this line is not 'app_label.migration_name sha256:…'. "
                "A merge may have mangled it; resolve it by hand or regenerate the file with "
                "'manage.py checkmigrations --update-lockfile'."
            )
        app_label, name = parts[0].split(".", 1)
        entries[(app_label, name)] = parts[1]
    return entries


def write(path: Path, checksums: Mapping[Key, str]) -> None:
    lines = [f"{app}.{name} {checksum}\n" for (app, name), checksum in sorted(checksums.items())]
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(HEADER + "".join(lines), encoding="utf-8")
    os.replace(tmp, path)
