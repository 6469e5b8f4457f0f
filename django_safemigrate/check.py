"""``safemigrate-check FILE ...``: every migration file given declares its deploy phase.

The older django-safemigrate package ships this command for its pre-commit hook, under
this module path; its projects keep the hook (``.pre-commit-hooks.yaml``, id ``check``)
and the command line when they switch:

- arguments are file paths, nothing else (``--help`` aside); no path is a success;
- each problem is one line on standard output, ``PATH: CLASS what is wrong``, and a
  closing paragraph says how to mark a migration;
- exit 0 when every migration class in the files is marked, 1 when one is not, 2 when
  a file cannot be read or an option is unknown (the message says which).

A migration class is a top-level class whose base's name ends in ``Migration``. Its
marker is ``safe = Safe.before_deploy()``, ``Safe.after_deploy(...)`` or
``Safe.always()`` in the class body, or this app's own ``safemigrate_phase = "pre_deploy"
| "post_deploy" | "always"``. The uncalled forms (``safe = Safe.always``) are refused
here although ``safemigrate`` accepts them: the older command asks for the call, and so
does this one. The file is read as a Python syntax tree, never imported or run (a hook
must not run a project's code), so a marker in a comment or a string does not count. A
file that is not Python holds no class to check: it is named on standard error and
passes; the ``checkmigrations`` hook reports it.

Nothing here imports Django, so the hook starts in a fraction of a second.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import os
import sys
from collections.abc import Iterable, Sequence
from typing import NoReturn, TextIO

from django_safemigrate.enums import Phase

#: The older package's marker attribute, and this app's.
SAFE = "safe"
PHASE = "safemigrate_phase"
MARKERS = ("before_deploy", "after_deploy", "always")

HOW_TO_MARK = """
Declare in each migration class when it may run relative to the code rollout:

    from django_safemigrate import Safe

    class Migration(migrations.Migration):
        safe = Safe.before_deploy()  # or Safe.after_deploy(), Safe.always()

or, in this app's own spelling, safemigrate_phase = "pre_deploy", "post_deploy" or "always".
"""


class UnreadableFile(Exception):
    """A path given on the command line cannot be read."""


@dataclasses.dataclass(frozen=True)
class Problem:
    path: str
    class_name: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.class_name} {self.message}"


def validate_migrations(
    files: Iterable[str | os.PathLike[str]],
    *,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> bool:
    """Print each unmarked migration class in ``files``; ``True`` when there is none.

    Raises :class:`UnreadableFile` for a path that cannot be read.
    """
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    found: list[Problem] = []
    for file in files:
        path = os.fspath(file)
        try:
            tree = _parse(path)
        except SyntaxError as exc:
            err.write(
                f"{path}: not Python source ({exc.msg}, line {exc.lineno}), so it holds no "
                "migration class to check.\n"
            )
            continue
        found += problems_in(path, tree)
    for problem in found:
        out.write(f"{problem}\n")
    if found:
        out.write(HOW_TO_MARK)
    return not found


def problems_in(path: str, tree: ast.Module) -> list[Problem]:
    """What is wrong with the markers of the migration classes in one parsed file."""
    problems = []
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and any(_names_migration(b) for b in node.bases):
            message = _marker_problem(_assignments(node))
            if message:
                problems.append(Problem(path, node.name, message))
    return problems


def _parse(path: str) -> ast.Module:
    try:
        with open(path, "rb") as f:
            source = f.read()
    except OSError as exc:
        raise UnreadableFile(
            f"safemigrate-check cannot read {path} ({exc.strerror or exc}). It takes the paths "
            "of migration files; check the path (pre-commit passes the staged files itself)."
        ) from None
    # Bytes, so that a PEP 263 coding line is honoured; undecodable text is a SyntaxError.
    return ast.parse(source, filename=path)


def _names_migration(base: ast.expr) -> bool:
    if isinstance(base, ast.Name):
        return base.id.endswith("Migration")
    if isinstance(base, ast.Attribute):
        return base.attr.endswith("Migration")
    return False


def _assignments(cls: ast.ClassDef) -> dict[str, ast.expr]:
    """The class body's plain assignments to a name, the last one winning as in Python."""
    values: dict[str, ast.expr] = {}
    for statement in cls.body:
        if isinstance(statement, ast.Assign):
            for target in statement.targets:
                if isinstance(target, ast.Name):
                    values[target.id] = statement.value
        elif (
            isinstance(statement, ast.AnnAssign)
            and isinstance(statement.target, ast.Name)
            and statement.value is not None
        ):
            values[statement.target.id] = statement.value
    return values


def _marker_problem(values: dict[str, ast.expr]) -> str | None:
    if SAFE in values:
        return _safe_problem(values[SAFE])
    if PHASE in values:
        return _phase_problem(values[PHASE])
    return (
        "has no deploy marker: add safe = Safe.before_deploy(), Safe.after_deploy() or "
        "Safe.always() to it."
    )


def _safe_problem(value: ast.expr) -> str | None:
    if isinstance(value, ast.Call) and _safe_method(value.func):
        return None
    if _safe_method(value):
        written = ast.unparse(value)
        return f"uses the uncalled safe = {written}: write safe = {written}() instead."
    return (
        f"sets safe = {ast.unparse(value)}, which is not Safe.before_deploy(), "
        "Safe.after_deploy() or Safe.always()."
    )


def _safe_method(node: ast.expr) -> bool:
    """``Safe.always`` and friends, ``Safe`` reached by name or through a module."""
    if not (isinstance(node, ast.Attribute) and node.attr in MARKERS):
        return False
    owner = node.value
    return (isinstance(owner, ast.Name) and owner.id == "Safe") or (
        isinstance(owner, ast.Attribute) and owner.attr == "Safe"
    )


def _phase_problem(value: ast.expr) -> str | None:
    if isinstance(value, ast.Constant) and value.value in {p.value for p in Phase}:
        return None
    choices = ", ".join(repr(p.value) for p in Phase)
    return f"sets {PHASE} = {ast.unparse(value)}, which is not one of {choices}."


def main(argv: Sequence[str] | None = None) -> NoReturn:
    parser = argparse.ArgumentParser(
        prog="safemigrate-check",
        description="Check that every migration file given declares its deploy phase "
        "(safe = Safe.before_deploy(), Safe.after_deploy() or Safe.always()). Exit codes: "
        "0 every migration is marked, 1 one is not, 2 a file cannot be read or bad usage.",
    )
    parser.add_argument("files", nargs="*", metavar="FILE", help="Migration files to check.")
    options = parser.parse_args(argv)
    try:
        ok = validate_migrations(options.files)
    except UnreadableFile as exc:
        sys.stderr.write(f"{exc}\n")
        sys.exit(2)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
