"""The throwaway Django project each corpus becomes, and ``checkmigrations`` run on it.

Each project lives in a temporary directory and is judged on a database created for it on
the server of ``DATABASE_URL`` (dropped afterwards). Its settings judge the SQL as written,
like the peers do, on tables that count as large:

- ``SAFEMIGRATE["SMALL_TABLE_ROWS"] = 0``: no existing table is small, so a lock finding
  blocks whatever the table's row estimate (the peers judge a migration as if it ran on a
  production table);
- ``SAFEMIGRATE["ONLINE"] = False``: a risky statement is judged as the backend emits
  it, not in the online form ``safemigrate`` would run instead.

``checkmigrations`` runs with its default selection (the migrations not applied on the
database) and ``--format json --fail-on risky``: what is applied before it runs is what the
migration under judgement finds in the database. A table missing from the database counts
as created by the deploy itself (new, empty), an existing one as a production table.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

TIMEOUT = 600
BASE_APPS = ("django.contrib.contenttypes", "django.contrib.auth", "django_safemigrate")

SETTINGS = '''\
"""Throwaway project of bench/agreement (written by bench/agreement/project.py)."""

import os
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent
SECRET_KEY = "agreement-benchmark-only"
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
DATABASES = {{"default": dj_database_url.parse(os.environ["DATABASE_URL"], conn_max_age=0)}}
INSTALLED_APPS = {apps!r}
SAFEMIGRATE = {{"SMALL_TABLE_ROWS": 0, "ONLINE": False}}
'''

#: Applies the project's own apps fully, then each corpus app up to its target (Django's
#: own ``migrate`` command class, not the override: nothing here is under review).
APPLY_CHILD = r"""
import json, sys
import django

django.setup()
from django.core.management import call_command
from django.core.management.commands.migrate import Command as Migrate

for app in ("contenttypes", "auth", "django_safemigrate"):
    call_command(Migrate(), app, verbosity=0, interactive=False)
for app, target in json.loads(sys.argv[1]):
    call_command(Migrate(), app, target, verbosity=0, interactive=False)
"""


class ProjectError(Exception):
    """A throwaway project could not be built, migrated or judged."""


@dataclasses.dataclass(frozen=True)
class Judged:
    """``checkmigrations``'s JSON reports by ``(app_label, migration)``, and its problems."""

    reports: dict[tuple[str, str], dict[str, Any]]
    problems: list[dict[str, Any]]


def write_settings(root: Path, apps: Sequence[str]) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "settings.py").write_text(SETTINGS.format(apps=[*BASE_APPS, *apps]), encoding="utf-8")


def write_migration(folder: Path, name: str, body: str) -> None:
    migrations = folder / "migrations"
    migrations.mkdir(parents=True, exist_ok=True)
    for package in (folder, migrations):
        init = package / "__init__.py"
        if not init.exists():
            init.write_text("", encoding="utf-8")
    (migrations / f"{name}.py").write_text(body, encoding="utf-8")


def runsql_migration(
    app: str, *, depends_on: str | None, sql: str, atomic: bool, comment: str = ""
) -> str:
    """A migration of one ``RunSQL`` (or none when ``sql`` is empty)."""
    dependencies = [(app, depends_on)] if depends_on else []
    operation = f"        migrations.RunSQL({sql!r}),\n" if sql.strip() else ""
    header = "".join(f"# {line}\n" for line in comment.splitlines())
    return (
        f"{header}from django.db import migrations\n\n\n"
        "class Migration(migrations.Migration):\n"
        f"    atomic = {atomic}\n"
        f"    dependencies = {dependencies!r}\n"
        "    operations = [\n"
        f"{operation}"
        "    ]\n"
    )


def missing_imports(sources: Sequence[str], *, local: Sequence[str]) -> list[str]:
    """Top-level modules the migration sources import that this environment lacks."""
    missing: set[str] = set()
    for source in sources:
        for node in ast.walk(ast.parse(source)):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                if top in local or top == "__future__":
                    continue
                if importlib.util.find_spec(top) is None:
                    missing.add(top)
    return sorted(missing)


def _run(root: Path, database_url: str, args: list[str]) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, DATABASE_URL=database_url, DJANGO_SETTINGS_MODULE="settings")
    env.pop("PYTHONPATH", None)
    try:
        return subprocess.run(
            [sys.executable, *args],
            cwd=root,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise ProjectError(f"{args[:3]} in {root} took longer than {TIMEOUT} s") from exc


def _tail(text: str, lines: int = 30) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def apply(root: Path, database_url: str, targets: Sequence[tuple[str, str]]) -> None:
    """Migrate the project's own apps, then each ``(app, migration)`` target."""
    result = _run(root, database_url, ["-c", APPLY_CHILD, json.dumps(list(targets))])
    if result.returncode != 0:
        raise ProjectError(
            f"applying the setup migrations in {root} failed (exit {result.returncode}):\n"
            f"{_tail(result.stderr)}"
        )


def judge(root: Path, database_url: str, *, pg_version: int | None = None) -> Judged:
    """``checkmigrations --format json --fail-on risky`` on the unapplied migrations.

    A finding's ``blocking`` says it fails the run under ``--fail-on``: with ``risky``, it
    is exactly a risky or destructive finding that counts (exit 1 is then expected).
    """
    args = ["-m", "django", "checkmigrations", "--format", "json", "--fail-on", "risky"]
    if pg_version is not None:
        args += ["--pg-version", str(pg_version)]
    result = _run(root, database_url, args)
    if result.returncode not in (0, 1):
        raise ProjectError(
            f"checkmigrations in {root} exited {result.returncode}:\n{_tail(result.stdout)}\n"
            f"{_tail(result.stderr)}"
        )
    try:
        data = json.loads(result.stdout)
    except json.JSONDecodeError as exc:
        raise ProjectError(
            f"checkmigrations in {root} printed no JSON:\n{_tail(result.stdout)}"
        ) from exc
    reports = {(m["app_label"], m["name"]): m for m in data["migrations"]}
    return Judged(reports, list(data.get("problems", [])))
