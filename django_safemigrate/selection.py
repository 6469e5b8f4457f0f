"""Which migrations ``checkmigrations`` looks at: all, changed since a git ref, given files,
or unapplied."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterable
from pathlib import Path

from django.db.migrations.loader import MigrationLoader

from django_safemigrate.exceptions import UsageError

Key = tuple[str, str]


def in_scope(loader: MigrationLoader, app_label: str | None, name: str | None) -> set[Key]:
    """Migrations of the graph within the positional app label / migration name."""
    keys = set(loader.graph.nodes)
    if app_label:
        keys = {key for key in keys if key[0] == app_label}
    if name:
        keys = {key for key in keys if key[1] == name}
    return keys


def changed_files_since(ref: str, cwd: Path | None = None) -> set[str]:
    """Real paths of the files added or modified since ``ref`` (against the work tree).

    The comparison starts at the merge base of ``ref`` and ``HEAD``, as a pull
    request's diff does, and includes uncommitted and untracked files.
    """
    if not ref or ref.startswith("-"):
        raise UsageError(
            f"--since needs a git reference such as origin/main; {ref!r} looks like an option "
            "and is refused."
        )
    root = Path(_git(["rev-parse", "--show-toplevel"], cwd, what="find the git checkout"))
    _git(["rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"], cwd, what=f"resolve {ref!r}")
    base = _git(["merge-base", ref, "HEAD"], cwd, what=f"find the merge base of {ref!r} and HEAD")
    names = _git(
        ["diff", "--name-only", "--diff-filter=AMR", "--no-renames", base, "--"], cwd, what="diff"
    ).splitlines()
    names += _git(["ls-files", "--others", "--exclude-standard"], cwd, what="list").splitlines()
    return {os.path.realpath(root / name) for name in names}


def migration_files(loader: MigrationLoader) -> dict[Key, str]:
    """Real path of each migration's module file."""
    import inspect

    files = {}
    for key, migration in loader.disk_migrations.items():
        try:
            path = inspect.getsourcefile(type(migration))
        except TypeError:
            continue
        if path:
            files[key] = os.path.realpath(path)
    return files


def given_files(loader: MigrationLoader, paths: Iterable[str]) -> set[Key]:
    """The migrations defined in ``paths``; a path that holds none is a usage error."""
    by_file: dict[str, Key] = {file: key for key, file in migration_files(loader).items()}
    keys = set()
    strangers = []
    for path in paths:
        key = by_file.get(os.path.realpath(path))
        if key is None:
            strangers.append(path)
        else:
            keys.add(key)
    if strangers:
        raise UsageError(
            f"{', '.join(strangers)}: not the file of a migration of an installed app. "
            "checkmigrations judges the migrations of INSTALLED_APPS; check the path, or "
            "narrow the pre-commit hook's 'files' pattern to this project's migrations."
        )
    return keys


def _git(args: list[str], cwd: Path | None, *, what: str) -> str:
    try:
        proc = subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, text=True, check=False, timeout=60
        )
    except FileNotFoundError:
        raise UsageError("--since needs git, which is not installed here.") from None
    if proc.returncode != 0:
        detail = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "no output"
        if "not a git repository" in proc.stderr:
            raise UsageError(
                "--since compares against git, but the current directory is not inside a git "
                "checkout. Run checkmigrations from the project's checkout, or use --all."
            )
        raise UsageError(
            f"git could not {what} ({detail}). Check the reference (in CI, fetch it first, "
            "e.g. 'git fetch origin main'); the command was: git " + " ".join(args)
        )
    return proc.stdout.strip()


def unapplied(keys: Iterable[Key], applied: set[Key]) -> set[Key]:
    return {key for key in keys if key not in applied}
