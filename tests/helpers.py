"""Helpers for tests that run real commands in real processes against a real PostgreSQL."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from django_safemigrate.schema.catalog import Schema, read_schema

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = Path(__file__).resolve().parent / "scenarios"


def server_url() -> str:
    """The maintenance URL the test session runs against (set by tests.settings)."""
    return os.environ["DATABASE_URL"]


def url_for(database: str, base: str | None = None) -> str:
    params = conninfo_to_dict(base or server_url())
    params["dbname"] = database
    return _to_url(params)


def _to_url(params: dict[str, Any]) -> str:
    user = params.get("user") or "postgres"
    password = f":{params['password']}" if params.get("password") else ""
    host = params.get("host") or "127.0.0.1"
    port = f":{params['port']}" if params.get("port") else ""
    return f"postgres://{user}{password}@{host}{port}/{params['dbname']}"


def connect(database: str, **kwargs: Any) -> psycopg.Connection[Any]:
    return psycopg.connect(make_conninfo(url_for(database)), autocommit=True, **kwargs)


@contextmanager
def fresh_database(prefix: str = "sm") -> Iterator[str]:
    """A new, empty database on the test server, dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(make_conninfo(server_url()), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        with psycopg.connect(make_conninfo(server_url()), autocommit=True) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                [name],
            )
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')


@dataclasses.dataclass
class Result:
    out: str
    err: str
    code: int
    elapsed: float

    @property
    def output(self) -> str:
        return self.out + self.err


def command_env(
    database: str | None,
    *,
    apps: Sequence[str] = (),
    settings: dict[str, Any] | str | None = None,
    pythonpath: Sequence[Path] = (),
    database_url: str | None = None,
    module: str = "tests.scenario_settings",
    extra: dict[str, str] | None = None,
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SAFEMIGRATE_", "SCENARIO_"))}
    env["DJANGO_SETTINGS_MODULE"] = module
    if database_url is not None:
        env["DATABASE_URL"] = database_url
    elif database is not None:
        env["DATABASE_URL"] = url_for(database)
    env["SCENARIO_APPS"] = ",".join(apps)
    if isinstance(settings, str):
        env["SAFEMIGRATE_STRING"] = settings
    elif settings is not None:
        env["SAFEMIGRATE_JSON"] = json.dumps(settings)
    env["PYTHONPATH"] = os.pathsep.join([*(str(p) for p in pythonpath), str(ROOT)])
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def manage(*args: str) -> list[str]:
    return [sys.executable, str(ROOT / "manage.py"), *args]


def run_command(
    args: Sequence[str],
    env: dict[str, str],
    *,
    expect: int | None,
    timeout: float = 120,
    cwd: Path | None = None,
) -> Result:
    """Run ``manage.py ARGS`` and check the documented exit code every time."""
    started = time.monotonic()
    proc = subprocess.run(
        manage(*args),
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd or ROOT,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    result = Result(proc.stdout, proc.stderr, proc.returncode, time.monotonic() - started)
    if expect is not None:
        assert result.code == expect, (
            f"expected exit {expect}, got {result.code}\n"
            f"stdout:\n{result.out}\nstderr:\n{result.err}"
        )
    return result


def start_command(args: Sequence[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        manage(*args),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
    )


def copy_scenario(name: str, dest: Path) -> Path:
    """Copy ``tests/scenarios/NAME`` to ``dest/NAME`` (an importable package) and return it."""
    target = dest / name
    shutil.copytree(SCENARIOS / name, target, ignore=shutil.ignore_patterns("__pycache__"))
    return target


def query(database: str, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    with connect(database) as conn:
        cursor = conn.execute(sql, params)
        return list(cursor.fetchall()) if cursor.description else []


def schema_of(database: str, **options: Any) -> Schema:
    """``database``'s schema from the catalogs (:func:`read_schema`); the column order
    counts unless ``column_order=False``: these tests compare builds of the same history."""
    options.setdefault("column_order", True)
    with connect(database) as conn:
        return read_schema(conn.cursor(), **options)


def table_exists(database: str, table: str) -> bool:
    return bool(query(database, "SELECT to_regclass(%s) IS NOT NULL", [table])[0][0])


def applied(database: str, app: str | None = None) -> list[tuple[str, str]]:
    if not table_exists(database, "django_migrations"):
        return []
    sql = "SELECT app, name FROM django_migrations"
    params: list[Any] = []
    if app:
        sql += " WHERE app = %s"
        params.append(app)
    return [(a, n) for a, n in query(database, sql + " ORDER BY id", params)]


def wait_for(predicate: Any, timeout: float = 30, interval: float = 0.05) -> float:
    """Poll ``predicate`` until it is true; return the seconds it took."""
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)
    return time.monotonic() - started


def lock_holder_pid(database: str) -> int | None:
    """Backend pid of the session that holds the migration lock on ``database``, if any."""
    rows = query(
        database,
        "SELECT pid FROM pg_stat_activity WHERE datname = %s "
        "AND application_name LIKE 'django_safemigrate lock%%' "
        "AND pid IN (SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted)",
        [database],
    )
    return int(rows[0][0]) if rows else None
