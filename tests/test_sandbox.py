"""The analysis executes nothing, renders the same SQL live and offline, and never waits.

``checkmigrations``, ``safemigrate --plan`` and the judgement before a ``safemigrate`` run
render every migration's SQL; these tests run them in real processes against a real
database and check the catalogs afterwards.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from tests.helpers import (
    applied,
    command_env,
    connect,
    copy_scenario,
    fresh_database,
    query,
    run_command,
)


@pytest.fixture
def scenarios(tmp_path: Path) -> Path:
    for name in ("hostile", "parity", "risky"):
        copy_scenario(name, tmp_path)
    return tmp_path


def env_for(scenarios: Path, database: str, *apps: str, **kwargs):
    env = command_env(database, apps=apps, pythonpath=[scenarios], **kwargs)
    env["SCENARIO_BASE_DIR"] = str(scenarios)
    return env


def catalog_state(database: str) -> dict:
    return {
        "pwned": query(
            database, "SELECT relname FROM pg_class WHERE relname LIKE 'pwned%%' ORDER BY 1"
        ),
        "items": query(database, "SELECT name FROM hostile_item ORDER BY id"),
        "victims": query(database, "SELECT note FROM hostile_victim ORDER BY id"),
        "index": query(database, "SELECT to_regclass('hostile_item_name')::text"),
        "hostile_0002": ("hostile", "0002_hostile") in applied(database, "hostile"),
    }


# -- Nothing runs ------------------------------------------------------------------------


def test_hostile_operations_run_nothing_in_checkmigrations_plan_or_the_gate(scenarios):
    with fresh_database() as database:
        env = env_for(scenarios, database, "hostile")
        run_command(["migrate", "hostile", "0001"], env, expect=0)
        query(database, "INSERT INTO hostile_item (name) VALUES ('kept'), ('also kept')")
        query(database, "INSERT INTO hostile_victim (note) VALUES ('still here')")
        before = catalog_state(database)
        assert before["pwned"] == []
        assert before["index"] == [(None,)]

        data = json.loads(run_command(["checkmigrations", "--format", "json"], env, expect=1).out)
        report = next(m for m in data["migrations"] if m["name"] == "0002_hostile")
        by_operation = {(f["operation"], f["code"]): f for f in report["findings"]}
        # Through schema_editor.execute(): rendered and judged, not run.
        assert by_operation["DropsThroughTheEditor", "SM202"]["sql"] == "DROP TABLE hostile_victim"
        assert by_operation["CountsRenders", "SM101"]["table"] == "hostile_item"
        # Everything that reached for the database: refused, and reported.
        for operation in ("EditorCursor", "GlobalConnection", "DriverConnection", "HeldDriver"):
            finding = by_operation[operation, "SM404"]
            assert finding["severity"] == "destructive"
            assert "The analysis refused" in finding["message"]
        assert "CREATE TABLE pwned_editor" in by_operation["EditorCursor", "SM404"]["message"]
        assert "read-only transaction" in by_operation["HeldDriver", "SM404"]["message"]
        assert "could not be rendered" in by_operation["Raises", "SM404"]["message"]
        assert report["risk"] == "destructive"
        assert report["review"] == {"required": True, "status": "pending"}
        assert catalog_state(database) == before

        plan = run_command(["safemigrate", "--plan"], env, expect=None)
        # The run would stop at the gate (exit 3); --plan itself may say so with its code.
        assert plan.code in (0, 3), plan.output
        assert "hostile.0002_hostile: destructive, post_deploy, review pending, blocked" in plan.out
        assert "DropsThroughTheEditor, EditorCursor, GlobalConnection" in plan.out
        assert catalog_state(database) == before

        gate = run_command(["safemigrate"], env, expect=3)
        assert "hostile.0002_hostile needs a review (destructive)" in gate.err
        assert catalog_state(database) == before
        # The review screen shows the reviewer what the operations tried to run.
        [(sql,)] = query(
            database,
            "SELECT sql FROM django_safemigrate_governedmigration "
            "WHERE app_label = 'hostile' AND name = '0002_hostile'",
        )
        assert (
            "-- tried to run while rendered (refused): CREATE TABLE pwned_editor (id integer)"
            in sql
        )
        assert "DROP TABLE hostile_victim;" in sql

        # The sessions the commands left: none in a transaction, none read-only.
        assert query(
            database,
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND state LIKE 'idle in transaction%%'",
        ) == [(0,)]


def test_plan_renders_each_migration_once(scenarios, tmp_path):
    with fresh_database() as database:
        log = tmp_path / "renders.log"
        env = env_for(scenarios, database, "hostile", extra={"RENDER_LOG": str(log)})
        run_command(["migrate", "hostile", "0001"], env, expect=0)
        log.unlink(missing_ok=True)
        plan = run_command(["safemigrate", "--plan"], env, expect=None)
        assert plan.code in (0, 3), plan.output
        assert "step 1/1 transactional" in plan.out
        # The judgement's rendering is the one --plan shows: no second rendering.
        assert log.read_text().splitlines() == ["rendered"]


# -- Live and offline see the same SQL ---------------------------------------------------

PROBE = """
import json
from django.db import connection
from django_safemigrate.analysis.check import CheckRequest, run_check
from django_safemigrate.conf import get_settings

connection.ensure_connection()
major = connection.pg_version // 10000
out = {}
for mode in ("live", "offline"):
    run = run_check(
        CheckRequest(app_label="parity", all=True, offline=mode == "offline", pg_version=major,
                     fail_on=None),
        get_settings(),
    )
    out[mode] = {
        report.name: {
            "codes": sorted({f.code for f in report.findings}),
            "statements": [[s.sql for s in op.statements] for op in report.operations],
            "unrendered": [op.render_error for op in report.operations if op.render_error],
        }
        for report in run.result.reports
    }
print(json.dumps(out))
"""

#: The names the schema editor looks up to drop or defer a constraint or an index: the real
#: ones on a live database that has them, Django's default ones otherwise.
LOOKED_UP = re.compile(
    r'(DROP CONSTRAINT|SET CONSTRAINTS|DROP INDEX(?: CONCURRENTLY)?(?: IF EXISTS)?) "[^"]+"'
)


def normalised(rendered: dict) -> dict:
    return {
        name: {
            **report,
            "statements": [
                [LOOKED_UP.sub(r'\1 "<looked up>"', sql) for sql in op]
                for op in report["statements"]
            ],
        }
        for name, report in rendered.items()
    }


def probe(env) -> dict:
    out = run_command(["shell", "-c", PROBE], env, expect=0).out
    return json.loads(out.strip().splitlines()[-1])  # after the shell's own notice


def test_live_rendering_without_the_tables_is_the_offline_rendering(scenarios):
    with fresh_database() as database:
        env = env_for(scenarios, database, "parity")
        seen = probe(env)
        assert seen["live"] == seen["offline"]
        constraints = seen["live"]["0002_constraints"]
        # The foreign key Django drops before NOT NULL and creates again after it.
        first = constraints["statements"][0]
        assert any("DROP CONSTRAINT" in sql for sql in first), first
        assert any("FOREIGN KEY" in sql for sql in first), first
        assert "SM105" in constraints["codes"]
        assert not constraints["unrendered"]
        # SM111: the key's type change has no online form (a foreign key points to it),
        # which the models tell as well as the catalogs.
        assert seen["live"]["0003_smaller_key"]["codes"] == ["SM105", "SM107", "SM111", "SM206"]


def test_live_rendering_with_the_tables_adds_only_their_real_names(scenarios):
    with fresh_database() as database:
        env = env_for(scenarios, database, "parity")
        run_command(["migrate", "parity", "0001"], env, expect=0)
        seen = probe(env)
        assert normalised(seen["live"]) == normalised(seen["offline"])
        live = seen["live"]["0002_constraints"]["statements"]
        offline = seen["offline"]["0002_constraints"]["statements"]
        # The foreign key's real name (Django's, with the target in it) differs from the
        # default one an offline rendering guesses, and the live rendering uses it.
        real = {
            name
            for (name,) in query(
                database,
                "SELECT conname FROM pg_constraint WHERE conrelid = 'parity_order'::regclass "
                "AND contype = 'f'",
            )
        }
        assert real
        assert any(name in sql for name in real for op in live for sql in op)
        assert not any(
            name in sql for name in real for op in offline for sql in op if "DROP" in sql
        )


def test_checkmigrations_codes_match_live_and_offline(scenarios):
    with fresh_database() as database:
        env = env_for(scenarios, database, "parity")
        major = query(database, "SHOW server_version_num")[0][0][:2]

        def codes(*args: str) -> dict:
            out = run_command(
                [
                    "checkmigrations",
                    "parity",
                    "--all",
                    "--format",
                    "json",
                    "--fail-on",
                    "never",
                    *args,
                ],
                env,
                expect=0,
            ).out
            return {
                m["name"]: sorted(f["code"] for f in m["findings"])
                for m in json.loads(out)["migrations"]
            }

        offline = codes("--offline", "--pg-version", major)
        assert codes() == offline
        run_command(["migrate", "parity", "0001"], env, expect=0)
        assert codes() == offline
        assert "SM105" in offline["0002_constraints"]


# -- Catalog reads never wait behind a lock ----------------------------------------------


def test_a_table_locked_by_another_session_does_not_hold_the_analysis(scenarios):
    with fresh_database() as database:
        env = env_for(
            scenarios, database, "risky", settings={"SMALL_TABLE_ROWS": 100, "ONLINE": False}
        )
        run_command(["migrate", "risky", "0001"], env, expect=0)
        query(
            database,
            "INSERT INTO risky_item (name) SELECT 'n' || i FROM generate_series(1, 2000) i",
        )
        query(database, "ANALYZE risky_item")
        holder = connect(database)
        holder.autocommit = False
        try:
            holder.execute("LOCK TABLE risky_item IN ACCESS EXCLUSIVE MODE")
            started = time.monotonic()
            data = json.loads(
                run_command(["checkmigrations", "--format", "json"], env, expect=1, timeout=60).out
            )
            finding = next(
                f
                for m in data["migrations"]
                if m["name"] == "0002_item_name_index"
                for f in m["findings"]
            )
            assert finding["code"] == "SM101"
            assert finding["table"] == "risky_item"
            assert finding["table_rows"] == 2000
            assert finding["table_bytes"] > 0
            assert finding["blocking"]

            plan = run_command(["safemigrate", "--plan"], env, expect=None, timeout=60)
            assert plan.code in (0, 3), plan.output
            assert "risky.0002_item_name_index: risky" in plan.out
            # Both finished while the lock was held (they would wait as long as it lasts).
            elapsed = time.monotonic() - started
            assert elapsed < 45, elapsed
            held = query(
                database,
                "SELECT count(*) FROM pg_locks WHERE relation = 'risky_item'::regclass "
                "AND mode = 'AccessExclusiveLock' AND granted",
            )
            assert held == [(1,)]
        finally:
            holder.rollback()
            holder.close()


# -- the runner plans steps without running anything --------------------------------------


def test_the_runner_plans_steps_without_running_an_operation(tmp_path):
    """A non-atomic migration is rendered to plan its steps; an operation that sends a
    statement through a cursor of its own runs once, when its step runs. One that also
    emits a statement that refuses a transaction runs whole, as written, rather than
    split into what was rendered (which would drop its cursor work)."""
    copy_scenario("planned_once", tmp_path)
    with fresh_database() as database:
        env = command_env(database, apps=["planned_once"], pythonpath=[tmp_path])
        run_command(["safemigrate"], env, expect=0)
        assert query(database, "SELECT note FROM planned_once_entry") == [("ran",), ("ran",)]
        assert query(
            database,
            "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "WHERE c.relname = 'planned_once_note'",
        ) == [(True,)]
        steps = query(
            database,
            "SELECT step_index, kind FROM django_safemigrate_steprecord "
            "WHERE app_label = 'planned_once' AND name = '0002_note' ORDER BY step_index",
        )
        # Each runs whole, in autocommit, as Django runs a non-atomic migration's operations.
        assert steps == [(0, "autocommit_python"), (1, "autocommit_python")]


def test_a_rule_reading_the_live_catalog_does_not_break_the_gate(tmp_path):
    """SM106 reads the table's validated CHECK constraints while the gate judges a
    ``SET NOT NULL``: through the analysis's read-only catalog channel, never a cursor of
    its own (inside the analysis every connection refuses, which used to end the deploy
    with a traceback)."""
    app = copy_scenario("basic", tmp_path)
    (app / "migrations" / "0004_price_not_null.py").write_text(
        "from django.db import migrations, models\n\n\n"
        "class Migration(migrations.Migration):\n"
        "    dependencies = [('basic', '0003_item_sku')]\n"
        "    operations = [\n"
        "        migrations.AlterField('item', 'price', models.IntegerField(default=0)),\n"
        "    ]\n"
    )
    with fresh_database() as database:
        env = command_env(database, apps=["basic"], pythonpath=[tmp_path])
        run_command(["safemigrate", "basic", "0003"], env, expect=0)
        query(database, "INSERT INTO basic_item (name, price) VALUES ('a', 1)")
        query(
            database,
            "ALTER TABLE basic_item ADD CONSTRAINT price_set CHECK (price IS NOT NULL)",
        )
        plan = run_command(["safemigrate", "--plan"], env, expect=0)
        assert "Traceback" not in plan.output
        result = run_command(["safemigrate"], env, expect=0)
        assert "Traceback" not in result.output
        assert query(
            database,
            "SELECT attnotnull FROM pg_attribute "
            "WHERE attrelid = 'basic_item'::regclass AND attname = 'price'",
        ) == [(True,)]


@pytest.mark.django_db
def test_the_table_asked_about_is_the_one_django_introspects(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # With collect_sql, Django 6.1+ introspects a table renamed earlier in the same SQL under
    # the name the database still has; the rendering editor asks its catalog for the same.
    from django.contrib.auth.models import Group
    from django.db import connection

    from django_safemigrate import djangocompat

    asked: list[str] = []

    def get_constraints(cursor: object, table_name: str) -> dict[str, object]:
        asked.append(table_name)
        return {}

    monkeypatch.setattr(connection.introspection, "get_constraints", get_constraints)
    table = Group._meta.db_table
    with connection.schema_editor(collect_sql=True, atomic=False) as editor:
        editor.alter_db_table(Group, "auth_group_before", table)
        editor._constraint_names(Group, unique=True)
        ours = djangocompat.introspected_table(editor, table)

    assert asked == [ours]
