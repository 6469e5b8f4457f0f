"""``safemigrate`` end to end: each documented exit code, in a real process, on a real database."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.helpers import (
    applied,
    command_env,
    copy_scenario,
    fresh_database,
    query,
    run_command,
    table_exists,
)


@pytest.fixture
def database():
    with fresh_database() as name:
        yield name


@pytest.fixture
def scenarios(tmp_path: Path) -> Path:
    for name in ("basic", "failing", "broken", "slow"):
        copy_scenario(name, tmp_path)
    return tmp_path


#: The runner works with Django's backend and with django-pg-zero-downtime-migrations'.
ENGINES = [None, "django_zero_downtime_migrations.backends.postgres"]


def env_for(database: str, scenarios: Path, *apps: str, engine: str | None = None, **kwargs):
    if engine:
        kwargs["extra"] = {**kwargs.get("extra", {}), "DATABASE_ENGINE": engine}
    return command_env(database, apps=apps, pythonpath=[scenarios], **kwargs)


def ledger_runs(database: str) -> list[tuple[str, str, int]]:
    return query(
        database,
        "SELECT command, outcome, exit_code FROM django_safemigrate_run ORDER BY id",
    )


@pytest.mark.parametrize("engine", ENGINES)
def test_applies_the_plan_then_has_nothing_to_do(database, scenarios, engine):
    env = env_for(database, scenarios, "basic", engine=engine)
    first = run_command(["safemigrate"], env, expect=0)
    assert "Applying basic.0003_item_sku... OK" in first.out
    assert ("basic", "0003_item_sku") in applied(database)

    second = run_command(["safemigrate"], env, expect=0)
    assert "No migrations to apply." in second.out
    assert ledger_runs(database) == [
        ("safemigrate", "applied", 0),
        ("safemigrate", "nothing_to_do", 0),
    ]
    records = query(
        database,
        "SELECT app_label, name, outcome, checksum FROM django_safemigrate_migrationrecord "
        "WHERE app_label = 'basic' ORDER BY name",
    )
    assert [(a, n, o) for a, n, o, _ in records] == [
        ("basic", "0001_initial", "applied"),
        ("basic", "0002_item_price", "applied"),
        ("basic", "0003_item_sku", "applied"),
    ]
    assert all(c.startswith("sha256:v2:") and len(c) == 74 for *_, c in records)


@pytest.mark.parametrize("engine", ENGINES)
def test_ledger_records_the_run_that_created_its_own_tables(database, scenarios, engine):
    run_command(["safemigrate"], env_for(database, scenarios, "basic", engine=engine), expect=0)
    run = query(
        database,
        'SELECT command, argv, host, pid, "user", started_at <= lock_acquired_at, '
        "lock_acquired_at <= finished_at, outcome, exit_code FROM django_safemigrate_run",
    )
    assert len(run) == 1
    command, argv, host, pid, user, ordered1, ordered2, outcome, code = run[0]
    assert (command, outcome, code) == ("safemigrate", "applied", 0)
    assert "safemigrate" in argv
    assert host
    assert pid > 0
    assert user
    assert ordered1
    assert ordered2
    # Every migration of the plan, including those applied before the ledger
    # tables existed, is in the ledger exactly once.
    recorded = query(
        database, "SELECT app_label, name FROM django_safemigrate_migrationrecord ORDER BY id"
    )
    assert sorted(recorded) == sorted(applied(database))
    assert len(set(recorded)) == len(recorded)


@pytest.mark.parametrize("engine", ENGINES)
def test_failed_migration_exits_1_rolls_back_and_is_recorded(database, scenarios, engine):
    result = run_command(
        ["safemigrate"], env_for(database, scenarios, "failing", engine=engine), expect=1
    )
    assert "Applying failing.0002_fails_half_way failed" in result.err
    assert "division by zero" in result.err
    assert "rolled back" in result.err
    assert ("failing", "0001_initial") in applied(database)
    assert ("failing", "0002_fails_half_way") not in applied(database)
    # The AddField before the failing statement was rolled back with it.
    columns = query(
        database,
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'failing_item'",
    )
    assert sorted(c for (c,) in columns) == ["id", "name"]
    failed = query(
        database,
        "SELECT outcome, error FROM django_safemigrate_migrationrecord "
        "WHERE app_label = 'failing' AND name = '0002_fails_half_way'",
    )
    assert len(failed) == 1
    assert failed[0][0] == "failed"
    assert "division by zero" in failed[0][1]
    assert ledger_runs(database)[-1] == ("safemigrate", "failed", 1)


def test_unknown_app_label_exits_2_and_touches_nothing(database, scenarios):
    result = run_command(
        ["safemigrate", "nosuchapp"], env_for(database, scenarios, "basic"), expect=2
    )
    assert "no installed app with label 'nosuchapp'" in result.err
    assert "Traceback" not in result.err
    assert not table_exists(database, "django_migrations")


def test_unknown_migration_name_exits_2_and_touches_nothing(database, scenarios):
    result = run_command(
        ["safemigrate", "basic", "0042"], env_for(database, scenarios, "basic"), expect=2
    )
    assert "has no migration whose name starts with '0042'" in result.err
    assert not table_exists(database, "django_migrations")


def test_unreachable_database_exits_2(scenarios):
    env = command_env(
        None,
        apps=["basic"],
        pythonpath=[scenarios],
        database_url="postgres://postgres@127.0.0.1:1/nothing_listens_here",
    )
    result = run_command(["safemigrate"], env, expect=2)
    assert "Cannot connect to database 'default'" in result.err
    assert "127.0.0.1:1" in result.err
    assert "Nothing was applied" in result.err
    assert "Traceback" not in result.err


def test_unknown_role_exits_2(database, scenarios):
    from tests.helpers import url_for

    url = url_for(database).replace("postgres://postgres", "postgres://no_such_role_xyz:secret", 1)
    env = command_env(None, apps=["basic"], pythonpath=[scenarios], database_url=url)
    result = run_command(["safemigrate"], env, expect=2)
    assert "Cannot connect to database" in result.err
    assert "no_such_role_xyz" in result.err
    assert not table_exists(database, "django_migrations")


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ({"LOCK_WAIT": "soon"}, "SAFEMIGRATE['LOCK_WAIT'] must be a number of seconds"),
        (
            {"LOCK_WAIT": -1},
            "SAFEMIGRATE['LOCK_WAIT'] is -1, but it must be a finite number of seconds, 0 or "
            "more up to 86400 seconds",
        ),
        ({"LOCK_WIAT": 5}, "SAFEMIGRATE has an unknown key 'LOCK_WIAT'"),
        ({"LOCK_DATABASE": "replica"}, "is not a database alias"),
        ({"CHECKSUM_MISMATCH": "ignore"}, "must be one of 'error', 'warn'"),
        ("sometimes", "is not one of 'strict', 'nonstrict', 'disabled'"),
    ],
)
def test_invalid_settings_exit_2_and_touch_nothing(database, scenarios, setting, message):
    result = run_command(
        ["safemigrate"], env_for(database, scenarios, "basic", settings=setting), expect=2
    )
    assert message in result.err
    assert "safemigrate.E00" in result.err
    assert not table_exists(database, "django_migrations")


def test_migration_that_fails_to_import_exits_2(database, scenarios):
    result = run_command(["safemigrate"], env_for(database, scenarios, "broken"), expect=2)
    assert "0002_imports_missing_module.py" in result.err
    assert "a_module_that_does_not_exist" in result.err
    assert "Traceback" not in result.err
    assert not table_exists(database, "django_migrations")


def test_migration_with_a_syntax_error_exits_2(database, scenarios):
    path = scenarios / "basic" / "migrations" / "0003_item_sku.py"
    path.write_text(path.read_text().replace("operations = [", "operations = [[", 1))
    result = run_command(["safemigrate"], env_for(database, scenarios, "basic"), expect=2)
    assert "0003_item_sku.py (line" in result.err
    assert "SyntaxError" in result.err
    assert not table_exists(database, "django_migrations")


@pytest.mark.parametrize("engine", ENGINES)
def test_edited_applied_migration_blocks_with_exit_3(database, scenarios, engine):
    env = env_for(database, scenarios, "basic", engine=engine)
    run_command(["safemigrate", "basic", "0002"], env, expect=0)
    path = scenarios / "basic" / "migrations" / "0002_item_price.py"
    path.write_text(
        path.read_text().replace("IntegerField(null=True)", "BigIntegerField(null=True)")
    )
    result = run_command(["safemigrate"], env, expect=3)
    assert "basic.0002_item_price" in result.err
    assert "edited after they were applied" in result.err
    assert ("basic", "0003_item_sku") not in applied(database)
    assert ledger_runs(database)[-1] == ("safemigrate", "blocked", 3)


def test_edit_that_changes_only_formatting_is_not_an_edit(database, scenarios):
    env = env_for(database, scenarios, "basic")
    run_command(["safemigrate", "basic", "0002"], env, expect=0)
    path = scenarios / "basic" / "migrations" / "0002_item_price.py"
    text = path.read_text().replace(
        'migrations.AddField("item", "price", models.IntegerField(null=True)),',
        "# A comment explaining the column.\n        migrations.AddField(\n"
        "            'item',\n            'price',\n"
        "            models.IntegerField(null=True),\n        ),",
    )
    assert text != path.read_text()
    path.write_text(text)
    run_command(["safemigrate"], env, expect=0)
    assert ("basic", "0003_item_sku") in applied(database)


def test_checksum_mismatch_can_be_downgraded_to_a_warning(database, scenarios):
    env = env_for(database, scenarios, "basic", settings={"CHECKSUM_MISMATCH": "warn"})
    run_command(["safemigrate", "basic", "0002"], env, expect=0)
    path = scenarios / "basic" / "migrations" / "0002_item_price.py"
    path.write_text(
        path.read_text().replace("IntegerField(null=True)", "BigIntegerField(null=True)")
    )
    result = run_command(["safemigrate"], env, expect=0)
    assert "Warning: Applied migrations were edited" in result.err
    assert ("basic", "0003_item_sku") in applied(database)


def test_migrations_applied_before_install_are_adopted_then_guarded(database, scenarios):
    # Applied by plain Django (the ledger tables did not exist yet).
    env = env_for(database, scenarios, "basic")
    run_command(["migrate", "basic", "0002"], env, expect=0)
    assert not table_exists(database, "django_safemigrate_run")
    run_command(["safemigrate", "basic", "0002"], env, expect=0)
    adopted = query(
        database,
        "SELECT name FROM django_safemigrate_migrationrecord "
        "WHERE app_label = 'basic' AND outcome = 'adopted' ORDER BY name",
    )
    assert adopted == [("0001_initial",), ("0002_item_price",)]
    path = scenarios / "basic" / "migrations" / "0001_initial.py"
    path.write_text(path.read_text().replace("max_length=50", "max_length=60"))
    run_command(["safemigrate"], env, expect=3)


def test_plan_changes_nothing(database, scenarios):
    result = run_command(["safemigrate", "--plan"], env_for(database, scenarios, "basic"), expect=0)
    assert "basic.0003_item_sku" in result.out
    # Each migration is named once, on the line that gives its judgement.
    headings = [line for line in result.out.splitlines() if line.startswith("basic.0003")]
    assert len(headings) == 1, result.out
    assert not any(
        line.strip().startswith("basic.0003")
        for line in result.out.splitlines()
        if line.startswith(" ")
    )
    assert not table_exists(database, "basic_item")
    assert not table_exists(database, "django_safemigrate_run")


@pytest.mark.parametrize("option", ["--check", "--prune"])
def test_migrate_only_options_are_refused(database, scenarios, option):
    result = run_command(
        ["safemigrate", "basic", option], env_for(database, scenarios, "basic"), expect=2
    )
    assert f"safemigrate does not take {option}" in result.err


def test_wrong_password_exits_2(scenarios):
    """A server that checks passwords (a throwaway embedded one) refuses the wrong one."""
    import psycopg

    from django_safemigrate.testing.postgres import EmbeddedPostgres

    server = EmbeddedPostgres.temporary().start()
    try:
        with psycopg.connect(server.url("postgres"), autocommit=True) as conn:
            conn.execute("ALTER ROLE postgres PASSWORD 'the-right-one'")
            (server.pgdata / "pg_hba.conf").write_text(
                "local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n"
            )
            conn.execute("SELECT pg_reload_conf()")
        url = f"postgres://postgres:a-wrong-one@127.0.0.1:{server.port}/postgres"
        env = command_env(None, apps=["basic"], pythonpath=[scenarios], database_url=url)
        result = run_command(["safemigrate"], env, expect=2)
        assert "password authentication failed" in result.err
        assert "Nothing was applied" in result.err
        assert "a-wrong-one" not in result.output
        right = url.replace("a-wrong-one", "the-right-one")
        with psycopg.connect(right) as conn:
            assert conn.execute("SELECT to_regclass('django_migrations')").fetchone() == (None,)
    finally:
        server.destroy()


NOT_POSTGRESQL = [
    ["safemigrate"],
    ["safemigrate", "--plan"],
    ["checkmigrations", "--all"],
    ["checkmigrations", "--all", "--offline"],
    ["reviewmigration", "basic", "0001", "--approve", "--note", "fine", "--as", "nobody"],
]


@pytest.mark.parametrize("command", NOT_POSTGRESQL, ids=" ".join)
def test_a_database_that_is_not_postgresql_exits_2_untouched(tmp_path, scenarios, command):
    database_file = tmp_path / "db.sqlite3"
    env = command_env(
        None, apps=["basic"], pythonpath=[scenarios], database_url=f"sqlite:///{database_file}"
    )
    result = run_command(command, env, expect=2)
    assert "Database 'default' is not a PostgreSQL database" in result.err
    assert "'django.db.backends.sqlite3'" in result.err
    assert "Traceback" not in result.err
    # Django's own system checks may open it (safemigrate runs them); nothing was written.
    assert not database_file.exists() or database_file.stat().st_size == 0


@pytest.mark.parametrize("command", NOT_POSTGRESQL[:3], ids=" ".join)
def test_a_database_without_an_engine_exits_2(scenarios, command):
    env = command_env(
        None,
        apps=["basic"],
        pythonpath=[scenarios],
        database_url="postgres://postgres@127.0.0.1:1/unused",
        extra={"DATABASE_ENGINE": "django.db.backends.dummy"},
    )
    result = run_command(command, env, expect=2)
    assert "it has no ENGINE" in result.err
    assert "Traceback" not in result.err


@pytest.mark.parametrize("engine", ENGINES)
def test_constraints_and_not_null_run_on_both_backends(engine, scenarios):
    """django-pg-zero-downtime-migrations hands its execute() objects of its own (lists of
    statements, statements carrying their lock); the runner reads their SQL for the
    timeouts without ``str()``, which fails on some of them."""
    migrations = scenarios / "basic" / "migrations"
    (migrations / "0004_price_check.py").write_text(
        "from django.db import migrations, models\n\n\n"
        "class Migration(migrations.Migration):\n"
        "    dependencies = [('basic', '0003_item_sku')]\n"
        "    operations = [migrations.AddConstraint('item', models.CheckConstraint(\n"
        "        condition=models.Q(price__gte=0), name='price_pos'))]\n"
    )
    (migrations / "0005_price_not_null.py").write_text(
        "from django.db import migrations, models\n\n\n"
        "class Migration(migrations.Migration):\n"
        "    dependencies = [('basic', '0004_price_check')]\n"
        "    operations = [\n"
        "        migrations.AlterField('item', 'price', models.IntegerField(default=0)),\n"
        "    ]\n"
    )
    with fresh_database() as database:
        env = env_for(database, scenarios, "basic", engine=engine)
        run_command(["safemigrate", "basic", "0003"], env, expect=0)
        query(database, "INSERT INTO basic_item (name, price) VALUES ('a', 1)")
        run_command(["safemigrate"], env, expect=0)
        assert query(
            database,
            "SELECT conname, convalidated FROM pg_constraint "
            "WHERE conrelid = 'basic_item'::regclass AND contype = 'c'",
        ) == [("price_pos", True)]
        assert query(
            database,
            "SELECT attnotnull FROM pg_attribute "
            "WHERE attrelid = 'basic_item'::regclass AND attname = 'price'",
        ) == [(True,)]


def _reads_of_django_migrations(database: str) -> int:
    """Scans of ``django_migrations`` so far (statistics flushed by the ending sessions)."""
    query(database, "SELECT pg_stat_clear_snapshot()")
    for _ in range(50):
        # Each server process reports its counts when its session ends; the command's
        # sessions ended before it exited, the report follows shortly.
        rows = query(
            database,
            "SELECT coalesce(seq_scan, 0) + coalesce(idx_scan, 0) FROM pg_stat_user_tables "
            "WHERE relname = 'django_migrations' AND schemaname = 'public'",
        )
        if rows:
            return int(rows[0][0])
        time.sleep(0.1)
    raise AssertionError("no statistics for django_migrations")


def _settled_reads(database: str) -> int:
    before = -1
    count = _reads_of_django_migrations(database)
    while count != before:
        time.sleep(0.3)
        before, count = count, _reads_of_django_migrations(database)
    return count


def test_a_run_reads_the_applied_migrations_once_until_it_writes(database, scenarios):
    # Under the lock nothing else records migrations in the schema: the ledger, the
    # history check, the checksum check, the gate and Django's migrate share one read of
    # django_migrations, taken again only after the run itself records a migration.
    env = env_for(database, scenarios, "basic")
    run_command(["safemigrate", "basic", "0002"], env, expect=0)
    before = _settled_reads(database)
    run_command(["safemigrate"], env, expect=0)
    applying = _settled_reads(database) - before
    run_command(["safemigrate"], env, expect=0)
    nothing = _settled_reads(database) - before - applying
    # One read before anything, one after the run recorded 0003 (Django's check of the
    # squashed migrations); a run with nothing to do reads once.
    assert (applying, nothing) == (2, 1)
