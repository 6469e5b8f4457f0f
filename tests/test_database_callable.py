"""``safemigrate --callable-databases``: the databases a project function returns.

Each database is one of ``SAFEMIGRATE['DATABASES_CALLABLE']``'s ``(name, settings)``
pairs, not in ``DATABASES``, and is governed as ``--database`` governs one: its own lock,
its own ledger, its own exit code. Real processes against fresh databases on the test
server; the callable is a module written under ``tmp_path``. While each database's run
holds its lock, the module's ``post_migrate`` receiver notes what the server and
``django.db.connections`` look like, so the tests can see each lock taken in its own
database and each transient alias gone before the next database starts.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from psycopg.conninfo import conninfo_to_dict

from django_safemigrate.execution.lock import lock_key
from tests.helpers import (
    applied,
    command_env,
    connect,
    copy_scenario,
    fresh_database,
    query,
    run_command,
    server_url,
    table_exists,
)

# Runs over several databases, one after the other: the same on every Django version,
# so CI runs them in its first pass only.
pytestmark = pytest.mark.once

APP = "fleet_shop"
DROP = (APP, "0003_remove_product_legacy_code")
NAMES = ("acme", "globex", "initech")
CALLABLE = "customer_databases.databases"
#: In every entry: a password must never reach a message (trust auth ignores it).
PASSWORD = "s3cret-never-shown"

#: The callable's module: notes its import, each call, and what each run sees.
MODULE = """
import json
import os

from django.db import connections
from django.db.models.signals import post_migrate


def note(**what):
    with open(os.environ["CALLABLE_LOG"], "a") as log:
        log.write(json.dumps(what) + "\\n")


note(event="import")


def observe(sender, using, **kwargs):
    if sender.label != "fleet_shop":
        return
    names = json.loads(os.environ["CALLABLE_WATCHED"])
    with connections[using].cursor() as cursor:
        cursor.execute(
            "SELECT DISTINCT d.datname FROM pg_locks l JOIN pg_database d ON d.oid = l.database"
            " WHERE l.locktype = 'advisory' AND l.granted AND d.datname = ANY(%s)",
            [names],
        )
        locked = sorted(row[0] for row in cursor.fetchall())
        cursor.execute(
            "SELECT DISTINCT datname FROM pg_stat_activity WHERE backend_type = 'client backend'"
            " AND datname = ANY(%s) AND pid <> pg_backend_pid()",
            [names],
        )
        others = sorted(row[0] for row in cursor.fetchall())
    note(event="migrated", using=using, aliases=sorted(connections), locked=locked, others=others)


post_migrate.connect(observe, weak=False)
"""

#: Returns ENTRIES, a Python literal the test writes.
RETURNS_ENTRIES = """

def databases():
    note(event="call")
    return ENTRIES
"""


def entry(database: str) -> dict[str, Any]:
    """A ``DATABASES`` entry for ``database`` on the test server."""
    params = conninfo_to_dict(server_url())
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": database,
        "USER": params.get("user") or "postgres",
        "PASSWORD": PASSWORD,
        "HOST": params.get("host") or "127.0.0.1",
        "PORT": str(params.get("port") or 5432),
    }


UNREACHABLE = {**entry("nowhere"), "HOST": "127.0.0.1", "PORT": "1"}


@pytest.fixture
def home() -> Iterator[str]:
    """The ``default`` alias's database: the callable's databases never touch it."""
    with fresh_database("callable_home") as name:
        yield name


@pytest.fixture
def customers() -> Iterator[dict[str, str]]:
    """name → a fresh database of its own, in no ``DATABASES``."""
    with ExitStack() as stack:
        yield {name: stack.enter_context(fresh_database("customer")) for name in NAMES}


class Project:
    """A project whose ``DATABASES_CALLABLE`` module the test writes."""

    def __init__(self, tmp_path: Path, home: str, customers: dict[str, str]) -> None:
        self.tmp_path = tmp_path
        self.home = home
        self.customers = customers
        self.log = tmp_path / "callable.log"
        copy_scenario(APP, tmp_path)

    def write(self, body: str) -> None:
        (self.tmp_path / "customer_databases.py").write_text(MODULE + body)

    def returning(self, entries: list[Any]) -> None:
        self.write(f"\nENTRIES = {entries!r}\n" + RETURNS_ENTRIES)

    def env(self, settings: dict[str, Any] | None = None) -> dict[str, str]:
        return command_env(
            self.home,
            apps=[APP],
            pythonpath=[self.tmp_path],
            settings={"DATABASES_CALLABLE": CALLABLE} if settings is None else settings,
            extra={
                "CALLABLE_LOG": str(self.log),
                "CALLABLE_WATCHED": json.dumps([self.home, *self.customers.values()]),
            },
        )

    def notes(self) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def untouched(self) -> bool:
        """No database of the test was migrated, nor was the ``default`` one."""
        return not any(
            table_exists(database, "django_migrations")
            for database in [self.home, *self.customers.values()]
        )


@pytest.fixture
def project(tmp_path: Path, home: str, customers: dict[str, str]) -> Project:
    return Project(tmp_path, home, customers)


def runs(database: str) -> list[tuple[str, str, str, int]]:
    """(command, database alias, outcome, exit code) of every ledger run, oldest first."""
    return query(
        database,
        "SELECT command, database, outcome, exit_code FROM django_safemigrate_run ORDER BY id",
    )


def report_of(path: Path) -> list[tuple[str, str, int | None]]:
    return [
        (d["alias"], d["outcome"], d["exit_code"])
        for d in json.loads(path.read_text())["databases"]
    ]


def test_every_database_is_migrated_under_its_own_lock_and_ledger(project, tmp_path):
    project.returning([(name, entry(db)) for name, db in project.customers.items()])
    report = tmp_path / "report.json"
    result = run_command(
        ["safemigrate", "--callable-databases", "--report-json", str(report)],
        project.env(),
        expect=0,
    )
    for index, name in enumerate(NAMES, 1):
        assert f"Database 'safemigrate:{name}' ({index}/3):" in result.out
    assert "3 databases: applied 3" in result.out
    # Imported and called once, for the whole run.
    notes = project.notes()
    assert [n["event"] for n in notes] == ["import", "call", *["migrated"] * 3]
    for name, database in project.customers.items():
        alias = f"safemigrate:{name}"
        assert DROP in applied(database)
        # Each database's ledger holds its own run, under its transient alias.
        assert runs(database) == [("safemigrate", alias, "applied", 0)]
        (seen,) = [n for n in notes if n.get("using") == alias]
        # While it ran: its alias and the default one only (the one before it was removed),
        # the migration lock held in its own database and in no other, and this process
        # connected to no other database of the test (the one before it was closed; the
        # default one was never opened). The other session in it is the lock's.
        assert seen["aliases"] == ["default", alias]
        assert seen["locked"] == [database]
        assert seen["others"] == [database]
    assert not table_exists(project.home, "django_migrations")
    assert report_of(report) == [(f"safemigrate:{n}", "applied", 0) for n in NAMES]


def test_lock_database_does_not_move_their_locks_to_another_database(project):
    """LOCK_DATABASE names an alias of DATABASES (here the default one): a lock session
    there would lock these databases from another one. Each takes its own."""
    project.returning([(name, entry(db)) for name, db in project.customers.items()])
    settings = {"DATABASES_CALLABLE": CALLABLE, "LOCK_DATABASE": "default"}
    run_command(["safemigrate", "--callable-databases"], project.env(settings), expect=0)
    for name, database in project.customers.items():
        (seen,) = [n for n in project.notes() if n.get("using") == f"safemigrate:{name}"]
        assert seen["locked"] == [database]
        assert seen["others"] == [database]
        assert DROP in applied(database)


def test_a_lock_held_on_one_database_holds_back_that_one_only(project, tmp_path):
    project.returning([(name, entry(db)) for name, db in project.customers.items()])
    globex = project.customers["globex"]
    report = tmp_path / "report.json"
    with connect(globex) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", [lock_key(globex, "public")])
        result = run_command(
            [
                "safemigrate",
                "--callable-databases",
                "--lock-wait",
                "0",
                "--report-json",
                str(report),
            ],
            project.env(),
            expect=4,
        )
    assert "lock timeout 1 (safemigrate:globex: Could not take the migration lock" in result.err
    assert DROP in applied(project.customers["acme"])
    assert DROP in applied(project.customers["initech"])
    assert not table_exists(globex, "django_migrations")
    assert report_of(report) == [
        ("safemigrate:acme", "applied", 0),
        ("safemigrate:globex", "lock_timeout", 4),
        ("safemigrate:initech", "applied", 0),
    ]


def test_an_unreachable_database_is_one_failed_database(project, tmp_path):
    acme, initech = project.customers["acme"], project.customers["initech"]
    project.returning([("acme", entry(acme)), ("gone", UNREACHABLE), ("initech", entry(initech))])
    report = tmp_path / "report.json"
    result = run_command(
        ["safemigrate", "--callable-databases", "--report-json", str(report)],
        project.env(),
        expect=2,
    )
    assert "Database 'safemigrate:gone' unreachable (exit 2)" in result.err
    assert "unreachable 1 (safemigrate:gone: Cannot connect to database" in result.err
    assert "Traceback" not in result.output
    assert PASSWORD not in result.output
    assert DROP in applied(acme)
    assert DROP in applied(initech)
    assert report_of(report) == [
        ("safemigrate:acme", "applied", 0),
        ("safemigrate:gone", "unreachable", 2),
        ("safemigrate:initech", "applied", 0),
    ]
    gone = json.loads(report.read_text())["databases"][1]
    assert "Cannot connect to database 'safemigrate:gone'" in gone["error"]
    # Its settings came from the callable, not from DATABASES: the message says where.
    assert "the settings SAFEMIGRATE['DATABASES_CALLABLE'] returned for it" in gone["error"]


def test_fail_fast_stops_at_the_first_database_that_does_not_succeed(project, tmp_path):
    acme, initech = project.customers["acme"], project.customers["initech"]
    project.returning([("acme", entry(acme)), ("gone", UNREACHABLE), ("initech", entry(initech))])
    report = tmp_path / "report.json"
    result = run_command(
        ["safemigrate", "--callable-databases", "--fail-fast", "--report-json", str(report)],
        project.env(),
        expect=2,
    )
    assert "Database 'safemigrate:initech'" not in result.out
    assert "not run 1 (safemigrate:initech)" in result.err
    assert DROP in applied(acme)
    assert not table_exists(initech, "django_migrations")
    assert report_of(report) == [
        ("safemigrate:acme", "applied", 0),
        ("safemigrate:gone", "unreachable", 2),
        ("safemigrate:initech", "not_run", None),
    ]


def test_other_commands_never_import_the_callable(project):
    project.returning([(name, entry(db)) for name, db in project.customers.items()])
    env = project.env()
    run_command(["check"], env, expect=0)
    run_command(["safemigrate", "--plan"], env, expect=0)
    run_command(["safemigrate"], env, expect=0)  # the default database, alone
    run_command(["migrate", "--database", "default"], env, expect=0)
    assert project.notes() == []
    assert DROP in applied(project.home)
    run_command(["safemigrate", "--callable-databases"], env, expect=0)
    assert [n["event"] for n in project.notes()][:2] == ["import", "call"]


#: (id, module body after MODULE, words of the one-paragraph error). Each body's first
#: database is a real one: the error must come before it is touched.
BAD_RESULTS = [
    (
        "import-fails",
        "\nimport missing_dependency_of_the_registry\n" + RETURNS_ENTRIES,
        "SAFEMIGRATE['DATABASES_CALLABLE'] is 'customer_databases.databases', which cannot be "
        "imported: ModuleNotFoundError: No module named 'missing_dependency_of_the_registry'.",
    ),
    (
        "no-such-function",
        "\ndef customers():\n    return []\n",
        'which cannot be imported: ImportError: Module "customer_databases" does not define a '
        '"databases" attribute',
    ),
    (
        "not-callable",
        "\ndatabases = [('acme', {})]\n",
        "which is a list of 1 item, not a function.",
    ),
    (
        "raises",
        "\ndef databases():\n"
        "    raise RuntimeError('the customer registry is down\\nretry later')\n",
        "raised RuntimeError: the customer registry is down. No database was migrated",
    ),
    (
        "raises-midway",
        "\ndef databases():\n    yield ENTRIES[0]\n    raise LookupError('page 2 of the list')\n",
        "raised LookupError: page 2 of the list. No database was migrated",
    ),
    ("returns-none", "\ndef databases():\n    return None\n", "returned None, not an iterable"),
    (
        "returns-a-dict",
        "\ndef databases():\n    return dict(ENTRIES)\n",
        "returned a dict, not an iterable of (name, settings) pairs; for a dict of names to "
        "settings, return its .items().",
    ),
    ("empty", "\ndef databases():\n    return iter(())\n", "returned no database."),
    (
        "not-a-pair",
        "\ndef databases():\n    return [ENTRIES[0], 'globex', ('initech', {}, 1)]\n",
        "returned 3 entries that cannot all be migrated: entry 2 is a str, not a (name, "
        "settings) pair; entry 3 is a tuple of 3 items, not a (name, settings) pair.",
    ),
    (
        "name-not-a-str",
        "\ndef databases():\n    return [ENTRIES[0], (7, ENTRIES[1][1])]\n",
        "entry 2's name is an int, not a str",
    ),
    (
        "name-too-long",
        "\ndef databases():\n    return [ENTRIES[0], ('g' * 89, ENTRIES[1][1])]\n",
        "entry 2's name is 89 characters long, more than 88 (the ledger keeps 'safemigrate:' "
        "and the name in 100)",
    ),
    (
        "settings-a-url",
        "\ndef databases():\n    return [ENTRIES[0], ('globex', 'postgres://u:"
        + PASSWORD
        + "@h/db')]\n",
        "the settings of 'globex' are a str (a URL? dj_database_url.parse() makes the dict), "
        "not a dict",
    ),
    (
        "duplicate-names",
        "\ndef databases():\n    return [ENTRIES[0], ENTRIES[1], ('acme', ENTRIES[2][1])]\n",
        "the name 'acme' is given more than once (entry 3 again): each database is migrated "
        "once per run",
    ),
    (
        "no-engine",
        "\ndef databases():\n"
        "    return [ENTRIES[0], ('globex', {**ENTRIES[1][1], 'ENGINE': ''})]\n",
        "the settings of 'globex' have no ENGINE",
    ),
    (
        "no-name",
        "\ndef databases():\n    s = dict(ENTRIES[1][1])\n    del s['NAME']\n"
        "    return [ENTRIES[0], ('globex', s)]\n",
        "the settings of 'globex' have no NAME",
    ),
    (
        "not-postgresql",
        "\ndef databases():\n    return [ENTRIES[0], ('globex', {'ENGINE': "
        "'django.db.backends.sqlite3', 'NAME': ':memory:'})]\n",
        "the ENGINE of 'globex' is 'django.db.backends.sqlite3' (sqlite), not PostgreSQL's",
    ),
    (
        "engine-does-not-load",
        "\ndef databases():\n    return [ENTRIES[0], ('globex', {**ENTRIES[1][1], 'ENGINE': "
        "'no.such.backend'})]\n",
        "the ENGINE of 'globex', 'no.such.backend', cannot be loaded: ModuleNotFoundError: "
        "No module named 'no'",
    ),
]


@pytest.mark.parametrize(
    ("body", "said"), [case[1:] for case in BAD_RESULTS], ids=[case[0] for case in BAD_RESULTS]
)
def test_a_bad_callable_is_one_paragraph_and_touches_nothing(project, body, said):
    entries = [(name, entry(db)) for name, db in project.customers.items()]
    project.write(f"\nENTRIES = {entries!r}\n" + body)
    result = run_command(["safemigrate", "--callable-databases"], project.env(), expect=2)
    err = result.err.strip()
    assert err.startswith("CommandError: "), result.err
    assert "\n" not in err
    assert said in err
    assert err.endswith("Nothing was read or changed.")
    assert PASSWORD not in result.output
    assert result.out == ""
    assert project.untouched()
    # Called once at most: a callable that fails is not tried again.
    assert [n["event"] for n in project.notes()].count("call") <= 1


@pytest.mark.parametrize(
    ("args", "settings", "said"),
    [
        (
            ["--database", "default"],
            None,
            "it cannot be combined with --database, which names databases of DATABASES.",
        ),
        (
            ["--all-databases"],
            None,
            "it cannot be combined with --all-databases, which names databases of DATABASES.",
        ),
        (["--lock-database", "default"], None, "--lock-database goes with one database"),
        (["--status"], None, "--status goes with one database"),
        ([], {}, "SAFEMIGRATE['DATABASES_CALLABLE'] is not set."),
    ],
    ids=["with-database", "with-all-databases", "lock-database", "status", "not-set"],
)
def test_options_that_do_not_go_with_it_are_refused(project, args, settings, said):
    project.returning([(name, entry(db)) for name, db in project.customers.items()])
    result = run_command(
        ["safemigrate", "--callable-databases", *args], project.env(settings), expect=2
    )
    err = result.err.strip()
    assert err.startswith("CommandError: "), result.err
    assert "\n" not in err
    assert said in err
    assert err.endswith("Nothing was read or changed.")
    assert project.untouched()
    # Refused before the project's code ran.
    assert project.notes() == []


@pytest.mark.parametrize(
    ("path", "said"),
    [
        (
            "no_such_registry.databases",
            "SAFEMIGRATE['DATABASES_CALLABLE'] is 'no_such_registry.databases', which cannot be "
            "imported: no module 'no_such_registry' is on the import path.",
        ),
        (
            "customer_databases.sub.databases",
            "which cannot be imported: 'customer_databases' is a module, not a package, so it "
            "has no module 'sub'.",
        ),
        (
            "databases",
            "SAFEMIGRATE['DATABASES_CALLABLE'] is 'databases', but it must be the dotted path "
            "of a function (module.function).",
        ),
    ],
    ids=["no-module", "not-a-package", "not-dotted"],
)
def test_the_system_check_finds_a_callable_that_cannot_be_imported(project, path, said):
    project.returning([(name, entry(db)) for name, db in project.customers.items()])
    env = project.env({"DATABASES_CALLABLE": path})
    check = run_command(["check"], env, expect=1)
    assert "safemigrate.E038" in check.err
    assert said in check.err
    deploy = run_command(["safemigrate", "--callable-databases"], env, expect=2)
    assert "safemigrate.E038" in deploy.err
    assert "Traceback" not in deploy.output
    assert project.untouched()
    # Neither the check nor the refused run executed the project's module.
    assert project.notes() == []
