"""The labelled migration corpus of ``bench/corpus`` (used by ``bench/accuracy.py``).

Checks that every corpus migration has exactly one well-formed label, that the corpus apps'
models match their migrations, and, on the test database, every PostgreSQL fact a label
relies on: each ``rewrite`` claim (``pg_class.relfilenode`` changes or not), each ``scan``
claim (the statement reads the whole table or not) and each ``fails`` claim, by applying the
migration itself to tables holding rows. The corpus runs in a child process with its own
settings (``bench/corpus/settings.py``), in a schema of its own inside the test database.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
import pytest
from django.db import connection

REPO_ROOT = Path(__file__).resolve().parent.parent
CORPUS = REPO_ROOT / "bench" / "corpus"
LABELS = CORPUS / "labels.toml"
LABEL_VALUES = {"safe", "risky", "destructive"}
MIGRATION_FILE = re.compile(r"^\d{4}_\w+\.py$")


def load_labels() -> dict[tuple[str, str], dict[str, Any]]:
    with LABELS.open("rb") as handle:
        raw = tomllib.load(handle)
    return {(app, name): entry for app, entries in raw.items() for name, entry in entries.items()}


def corpus_migrations() -> set[tuple[str, str]]:
    return {
        (path.parent.parent.name, path.stem)
        for path in CORPUS.glob("corpus_*/migrations/*.py")
        if MIGRATION_FILE.match(path.name)
    }


def claims() -> list[tuple[tuple[str, str], dict[str, Any]]]:
    """Labels with a rewrite, scan or fails claim, in plan order (app by app, by number)."""
    apps = [p.name for p in sorted(CORPUS.glob("corpus_*")) if p.is_dir()]
    return sorted(
        (
            (key, entry)
            for key, entry in load_labels().items()
            if {"rewrite", "scan", "fails"} & entry.keys()
        ),
        key=lambda item: (apps.index(item[0][0]), item[0][1]),
    )


def test_every_migration_has_a_label_and_every_label_a_migration() -> None:
    on_disk = corpus_migrations()
    labelled = set(load_labels())
    assert on_disk, "no corpus migrations found"
    assert sorted(on_disk - labelled) == [], "migrations without a label"
    assert sorted(labelled - on_disk) == [], "labels without a migration"


def test_labels_are_well_formed() -> None:
    for (app, name), entry in load_labels().items():
        where = f"{app}.{name}"
        assert entry.get("label") in LABEL_VALUES, where
        reason = entry.get("reason")
        assert isinstance(reason, str), where
        assert reason.strip(), where
        assert "\n" not in reason, where
        assert set(entry) <= {"label", "reason", "rewrite", "scan", "fails"}, where
        for kind in ("rewrite", "scan"):
            for table, value in entry.get(kind, {}).items():
                assert re.fullmatch(r"[a-z_]+", table), where
                assert isinstance(value, bool), where
        assert entry.get("fails", True) is True, where


def test_corpus_is_mixed() -> None:
    """Roughly half safe, half not, and at least 60 migrations."""
    labels = [entry["label"] for entry in load_labels().values()]
    assert len(labels) >= 60
    safe = labels.count("safe")
    assert 0.35 <= safe / len(labels) <= 0.65
    assert labels.count("destructive") >= 5


@pytest.fixture(scope="module")
def corpus_database_url(django_db_setup: None, django_db_blocker: Any) -> Iterator[str]:
    """A fresh schema in the test database, as a ``DATABASE_URL`` for the corpus settings."""
    with django_db_blocker.unblock():
        params = connection.get_connection_params()
    schema = f"corpus_labels_{os.getpid()}_{secrets.token_hex(3)}"
    conninfo = {
        key: params[key]
        for key in ("host", "port", "user", "password", "dbname")
        if params.get(key) not in (None, "")
    }
    with psycopg.connect(**conninfo, autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
    user = quote(str(conninfo.get("user", "")), safe="")
    password = conninfo.get("password")
    auth = f"{user}:{quote(str(password), safe='')}@" if password else (f"{user}@" if user else "")
    host = conninfo.get("host", "localhost")
    if str(host).startswith("/"):
        host = quote(str(host), safe="")
    port = f":{conninfo['port']}" if conninfo.get("port") else ""
    options = quote(f"-c search_path={schema}", safe="")
    try:
        yield f"postgres://{auth}{host}{port}/{conninfo['dbname']}?options={options}"
    finally:
        with psycopg.connect(**conninfo, autocommit=True) as admin:
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


def run_corpus(url: str, args: list[str], stdin: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "settings"}
    env.pop("PYTHONPATH", None)
    return subprocess.run(
        [sys.executable, *args],
        cwd=CORPUS,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_models_match_migrations(corpus_database_url: str) -> None:
    result = run_corpus(
        corpus_database_url, ["manage.py", "makemigrations", "--check", "--dry-run"]
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module")
def observations(corpus_database_url: str) -> dict[tuple[str, str], dict[str, Any]]:
    """What PostgreSQL did for every claimed migration (see ``bench/corpus/observe.py``)."""
    request = [
        {
            "app": app,
            "name": name,
            "tables": sorted({*entry.get("rewrite", {}), *entry.get("scan", {})}),
            "measure": bool({"rewrite", "scan"} & entry.keys()),
        }
        for (app, name), entry in claims()
    ]
    result = run_corpus(corpus_database_url, ["observe.py"], stdin=json.dumps(request))
    assert result.returncode == 0, result.stdout + result.stderr
    seen = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    return {(item["app"], item["name"]): item for item in seen}


@pytest.mark.parametrize(
    ("app", "name"), [key for key, _entry in claims()], ids=[f"{a}.{n}" for (a, n), _ in claims()]
)
def test_claims_hold_on_a_real_table(
    app: str, name: str, observations: dict[tuple[str, str], dict[str, Any]]
) -> None:
    entry = load_labels()[(app, name)]
    seen = observations[(app, name)]
    if entry.get("fails"):
        assert seen["failed"], f"{app}.{name} was expected to fail but applied"
        return
    assert not seen["failed"], seen["error"]
    for table, rewrites in entry.get("rewrite", {}).items():
        assert seen["tables"][table]["rewritten"] is rewrites, (
            f"{app}.{name}: {table} {'not ' if rewrites else ''}rewritten "
            f"(relfilenode {'unchanged' if rewrites else 'changed'}); SQL: {seen['statements']}"
        )
    for table, scans in entry.get("scan", {}).items():
        count = seen["tables"][table]["seq_scans"]
        assert count is not None, f"{app}.{name} is not atomic: scans cannot be counted"
        assert (count > 0) is scans, (
            f"{app}.{name}: {table} scanned {count} times; SQL: {seen['statements']}"
        )


@pytest.mark.django_db
def test_varchar_narrowing_fails_rather_than_truncates() -> None:
    """Why ``corpus_support.0004`` is risky, not destructive: nothing is cut silently."""
    from django.db import DataError

    with connection.cursor() as cursor:
        cursor.execute("CREATE TEMP TABLE narrowing (subject varchar(255))")
        cursor.execute("INSERT INTO narrowing VALUES (repeat('x', 200))")
        with pytest.raises(DataError, match="too long"):
            cursor.execute("ALTER TABLE narrowing ALTER COLUMN subject TYPE varchar(120)")


@pytest.mark.django_db
def test_numeric_to_integer_rounds() -> None:
    """Why ``corpus_support.0005`` is destructive: the fractions are gone after the change."""
    with connection.cursor() as cursor:
        cursor.execute("CREATE TEMP TABLE hours (resolution_hours numeric(8, 2))")
        cursor.execute("INSERT INTO hours VALUES (1.25), (2.5)")
        cursor.execute(
            "ALTER TABLE hours ALTER COLUMN resolution_hours TYPE integer "
            'USING "resolution_hours"::integer'
        )
        cursor.execute("SELECT resolution_hours FROM hours ORDER BY 1")
        assert [row[0] for row in cursor.fetchall()] == [1, 3]
