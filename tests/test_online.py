"""Online execution: risky statements on an existing table run in their online forms.

The ``online_shop`` scenario's 0002 holds one operation of each kind on a table that
0001 created and rows fill; its last two operations create a table and index it, which
keeps the plain form. What ran is read from the catalogs and the ledger; what a plain
run produces is the reference for the schema.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from django_safemigrate.schema.catalog import schema_differences
from tests.helpers import (
    command_env,
    copy_scenario,
    fresh_database,
    query,
    run_command,
    schema_of,
    start_command,
    wait_for,
)

APP = "online_shop"
ROWS = 5000


@pytest.fixture
def project(tmp_path: Path) -> Path:
    copy_scenario(APP, tmp_path)
    return tmp_path


def prepared(database: str, project: Path, settings: dict[str, object] | None = None) -> dict:
    """0001 applied and the table filled: 0002 runs on a table in use."""
    env = command_env(database, apps=[APP], pythonpath=[project], settings=settings)
    run_command(["safemigrate", APP, "0001"], env, expect=0)
    query(
        database,
        f"INSERT INTO {APP}_item (qty, note, code, size) SELECT g, 'note ' || g, 'code ' || g, "
        f"CASE WHEN g %% 2 = 0 THEN g END FROM generate_series(1, {ROWS}) g",
    )
    return env


def steps(database: str, name: str = "0002_online") -> list[tuple[int, str, str]]:
    return query(
        database,
        "SELECT step_index, kind, description FROM django_safemigrate_steprecord "
        "WHERE app_label = %s AND name = %s ORDER BY id",
        [APP, name],
    )


def leftovers(database: str) -> list[tuple[str, ...]]:
    """What an interrupted online form could leave: INVALID indexes, NOT VALID
    constraints, the temporary NOT NULL checks."""
    return query(
        database,
        "SELECT 'invalid index', c.relname FROM pg_index i JOIN pg_class c "
        "ON c.oid = i.indexrelid WHERE NOT i.indisvalid "
        "UNION ALL SELECT 'not valid', conname FROM pg_constraint WHERE NOT convalidated "
        "UNION ALL SELECT 'check', conname FROM pg_constraint WHERE conname LIKE '%%sm_notnull'",
    )


def test_each_risky_statement_runs_in_its_online_form(project):
    with fresh_database() as database:
        env = prepared(database, project)
        result = run_command(["safemigrate", APP, "0002", "-v", "2"], env, expect=0)
        recorded = steps(database)
        kinds = [kind for _, kind, _ in recorded]
        text = "\n".join(description for _, _, description in recorded)
        # Each concurrent build ran alone, outside a transaction.
        for sql in (
            "CREATE INDEX CONCURRENTLY online_item_qty_idx",
            "CREATE UNIQUE INDEX CONCURRENTLY online_item_code_uniq",
            "CREATE INDEX CONCURRENTLY online_shop_item_category_id_",
        ):
            assert any(sql in d and k == "non_transactional" for _, k, d in recorded), sql
        # Constraints were added NOT VALID and validated in a later step.
        assert "ADD CONSTRAINT online_item_qty_gte_0 CHECK (qty >= 0) NOT VALID" in text
        assert "VALIDATE CONSTRAINT online_item_qty_gte_0" in text
        assert "FOREIGN KEY (category_id) REFERENCES online_shop_category (id)" in text
        assert "UNIQUE USING INDEX online_item_code_uniq" in text
        assert "CHECK (note IS NOT NULL) NOT VALID" in text
        assert len(kinds) == 14, text
        # The new table and its index kept the plain form: one transaction, last.
        assert recorded[-1][2].startswith("CreateModel, AddIndex"), recorded[-1]
        assert "step 14/14" in result.out
        # The catalogs: everything valid, nothing temporary left, the default kept.
        assert leftovers(database) == []
        assert query(
            database,
            "SELECT conname, contype, convalidated FROM pg_constraint "
            "WHERE conrelid = 'online_shop_item'::regclass AND contype IN ('c', 'f', 'u') "
            "ORDER BY conname",
        ) == [
            ("online_item_code_uniq", "u", True),
            ("online_item_qty_gte_0", "c", True),
            ("online_shop_item_category_id_71b766e9_fk_online_sh", "f", True),
        ]
        assert query(
            database,
            "SELECT attnotnull, pg_get_expr(d.adbin, d.adrelid) FROM pg_attribute a "
            "LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum "
            "WHERE a.attrelid = 'online_shop_item'::regclass AND a.attname IN ('flag', 'note') "
            "ORDER BY a.attname",
        ) == [(True, "0"), (True, None)]
        # Old code that does not know the new column can still insert.
        query(database, "INSERT INTO online_shop_item (qty, note) VALUES (1, 'old code')")


def test_nulls_are_filled_in_batches_after_the_check_before_not_null(project):
    with fresh_database() as database:
        env = prepared(database, project)
        run_command(["safemigrate"], env, expect=0)
        recorded = steps(database, "0004_size_not_null")
        purposes = [d for _, _, d in recorded]
        check = next(i for i, p in enumerate(purposes) if "NOT NULL) NOT VALID" in p)
        fill = next(i for i, p in enumerate(purposes) if "fill the NULLs of size" in p)
        validate = next(i for i, p in enumerate(purposes) if "validate " in p)
        assert check < fill < validate, purposes
        assert recorded[fill][1] == "non_transactional"
        # The odd ids were NULL: each batch of 2,000 keys committed on its own.
        assert query(database, "SELECT count(*) FROM online_shop_item WHERE size = 7") == [
            (ROWS // 2,)
        ]
        batches = query(
            database, "SELECT count(DISTINCT xmin::text) FROM online_shop_item WHERE size = 7"
        )
        assert batches == [(3,)], batches
        assert leftovers(database) == []
        assert query(
            database,
            "SELECT attnotnull FROM pg_attribute WHERE attrelid = 'online_shop_item'::regclass "
            "AND attname = 'size'",
        ) == [(True,)]


def test_online_schema_equals_a_plain_run_but_for_the_kept_default(project):
    with fresh_database() as online, fresh_database() as plain:
        run_command(["safemigrate"], prepared(online, project), expect=0)
        plain_env = prepared(plain, project, {"ONLINE": False})
        run_command(["safemigrate"], plain_env, expect=0)
        # The plain run did it in one transaction per migration.
        assert [k for _, k, _ in steps(plain)] == ["transactional"]
        differences = schema_differences(
            schema_of(online, exclude_prefixes=["django_safemigrate"]),
            schema_of(plain, exclude_prefixes=["django_safemigrate"]),
        )
        assert len(differences) == 2, differences  # the flag column, on each side
        assert all("flag" in line for line in differences), differences


def test_a_migration_can_turn_online_execution_off(project):
    migration = project / APP / "migrations" / "0002_online.py"
    migration.write_text(
        migration.read_text().replace(
            "    dependencies =", "    safemigrate_online = False\n    dependencies =", 1
        )
    )
    with fresh_database() as database:
        run_command(["safemigrate"], prepared(database, project), expect=0)
        assert [k for _, k, _ in steps(database)] == ["transactional"]


def test_a_bad_online_attribute_is_a_usage_error(project):
    migration = project / APP / "migrations" / "0002_online.py"
    migration.write_text(
        migration.read_text().replace(
            "    dependencies =", "    safemigrate_online = 'yes'\n    dependencies =", 1
        )
    )
    with fresh_database() as database:
        env = prepared(database, project)
        result = run_command(["safemigrate"], env, expect=2)
        assert "safemigrate_online to 'yes', but it must be True or False" in result.err
        assert steps(database) == []


def test_a_new_database_runs_the_plain_forms(project):
    with fresh_database() as database:
        env = command_env(database, apps=[APP], pythonpath=[project])
        run_command(["safemigrate"], env, expect=0)
        # Nothing used the tables before this run: no online steps.
        assert [k for _, k, _ in steps(database)] == ["transactional"]


def test_checkmigrations_reports_online_statements_without_failing(project):
    with fresh_database() as database:
        env = prepared(database, project)
        result = run_command(["checkmigrations", "--format", "json", APP], env, expect=None)
        report = json.loads(result.out)
        findings = report["migrations"][0]["findings"]
        online = {f["code"] for f in findings if f.get("online")}
        assert {"SM101", "SM103", "SM104", "SM106", "SM205"} <= online
        for finding in findings:
            if finding.get("online"):
                assert finding["blocking"] is False
                assert finding["online"]["steps"] or finding["online"]["note"], finding
        unique = next(f for f in findings if f["code"] == "SM103" and f.get("online"))
        assert [s["transactional"] for s in unique["online"]["steps"]] == [False, True]
        assert unique["online"]["steps"][0]["sql"] == [
            "CREATE UNIQUE INDEX CONCURRENTLY online_item_code_uniq ON online_shop_item (code)"
        ]
        # What still fails: the old code writes NULL into the column made NOT NULL.
        blocking = [f["code"] for f in findings if f["blocking"]]
        assert blocking == ["SM205"], blocking
        assert result.code == 1
        # Without online execution every lock finding counts again.
        plain = run_command(
            ["checkmigrations", "--format", "json", APP],
            command_env(database, apps=[APP], pythonpath=[project], settings={"ONLINE": False}),
            expect=1,
        )
        counted = [f["code"] for f in json.loads(plain.out)["migrations"][0]["findings"]]
        assert {"SM101", "SM103", "SM104", "SM106"} <= set(counted)
        assert not any(f.get("online") for f in json.loads(plain.out)["migrations"][0]["findings"])


#: A trigger that makes the runner wait, at the record of step N, for the advisory
#: lock (4242, N) the test holds: the runner is then killed at a known step.
PAUSE = """
CREATE FUNCTION test_pause_at_step() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(4242, NEW.step_index);
    RETURN NEW;
END $$;
CREATE TRIGGER test_pause_at_step BEFORE INSERT ON django_safemigrate_steprecord
FOR EACH ROW WHEN (NEW.app_label = 'online_shop' AND NEW.name = '0002_online')
EXECUTE FUNCTION test_pause_at_step();
"""


def paused_at(database: str, step: int) -> bool:
    return bool(
        query(
            database,
            "SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
            "AND classid = 4242 AND objid = %s",
            [step],
        )
    )


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory):
    project = tmp_path_factory.mktemp("reference")
    copy_scenario(APP, project)
    with fresh_database() as database:
        run_command(["safemigrate"], prepared(database, project), expect=0)
        yield (
            schema_of(database, exclude_prefixes=["django_safemigrate"]),
            query(
                database, "SELECT id, qty, note, code, flag, size FROM online_shop_item ORDER BY id"
            ),
        )


# A kill at every step once (CI's first pass); on every Django, at the first, a middle and
# the last step.
@pytest.mark.parametrize(
    "step", [pytest.param(s, marks=() if s in (0, 7, 13) else pytest.mark.once) for s in range(14)]
)
def test_a_kill_at_each_step_then_a_rerun_ends_as_an_uninterrupted_run(project, reference, step):
    import psycopg

    from tests.helpers import url_for

    expected_schema, expected_rows = reference
    with fresh_database() as database:
        env = prepared(database, project)
        query(database, PAUSE)
        with psycopg.connect(url_for(database), autocommit=True) as holder:
            holder.execute("SELECT pg_advisory_lock(4242, %s)", [step])
            runner = start_command(["safemigrate"], env)
            try:
                wait_for(lambda: paused_at(database, step), timeout=60)
                runner.send_signal(signal.SIGKILL)
                runner.communicate(timeout=30)
            finally:
                if runner.poll() is None:
                    runner.kill()
                    runner.communicate()
        query(database, "DROP TRIGGER test_pause_at_step ON django_safemigrate_steprecord")
        query(database, "DROP FUNCTION test_pause_at_step()")
        run_command(["safemigrate"], env, expect=0)
        assert leftovers(database) == []
        differences = schema_differences(
            schema_of(database, exclude_prefixes=["django_safemigrate"]),
            expected_schema,
        )
        assert differences == []
        assert (
            query(
                database, "SELECT id, qty, note, code, flag, size FROM online_shop_item ORDER BY id"
            )
            == expected_rows
        )
        # Each step is recorded once, and the ones after the kill ran in the rerun.
        indexes = [index for index, _, _ in steps(database)]
        assert sorted(indexes) == list(range(14)), indexes


def test_zero_downtime_backend_forms_are_kept_and_validate_runs_in_its_own_step(project):
    """django-pg-zero-downtime-migrations emits NOT VALID then VALIDATE itself: nothing
    is rewritten, and the scan never runs in the transaction that took the strong lock."""
    with fresh_database() as database:
        env = prepared(database, project)
        env["DATABASE_ENGINE"] = "django_zero_downtime_migrations.backends.postgres"
        run_command(["safemigrate"], env, expect=0)
        recorded = steps(database)
        validating = [(k, d) for _, k, d in recorded if "VALIDATE CONSTRAINT" in d]
        assert validating, recorded
        for kind, description in validating:
            assert kind == "transactional"
            assert "ADD CONSTRAINT" not in description, description
        assert not any(", online:" in d for _, _, d in recorded), recorded
        assert leftovers(database) == []


def test_a_type_change_whose_catalogs_cannot_be_read_is_not_run_without_them(project):
    """A session holding the table keeps the catalogs from being read: the deploy stops
    with nothing of the change applied, instead of running a form planned without the
    column's constraints; once the table is free it runs in full."""
    import psycopg

    from tests.helpers import url_for

    (project / APP / "migrations" / "0005_qty_bigint.py").write_text(
        "from django.db import migrations, models\n\n\n"
        "class Migration(migrations.Migration):\n"
        '    dependencies = [("online_shop", "0004_size_not_null")]\n'
        '    operations = [migrations.AlterField("item", "qty", models.BigIntegerField())]\n'
    )
    with fresh_database() as database:
        env = prepared(database, project)
        run_command(["safemigrate", APP, "0004"], env, expect=0)
        with psycopg.connect(url_for(database)) as holder:
            holder.execute(f"LOCK TABLE {APP}_item IN ACCESS EXCLUSIVE MODE")
            result = run_command(["safemigrate"], env, expect=None, timeout=300)
            holder.rollback()
        assert result.code in (1, 3), result.output
        assert "could not be read" in result.output, result.output
        column = (
            "SELECT format_type(atttypid, atttypmod), attnotnull FROM pg_attribute "
            "WHERE attrelid = 'online_shop_item'::regclass AND attname = 'qty'"
        )
        assert query(database, column) == [("integer", True)]
        run_command(["safemigrate"], env, expect=0)
        assert query(database, column) == [("bigint", True)]
        assert query(
            database,
            "SELECT convalidated FROM pg_constraint WHERE conname = 'online_item_qty_gte_0'",
        ) == [(True,)]
        assert leftovers(database) == []


def test_plain_migrate_runs_the_online_forms_too(project):
    with fresh_database() as database:
        env = prepared(database, project)
        result = run_command(["migrate", APP, "0002"], env, expect=0)
        # Django's output at the default verbosity.
        assert "  Applying online_shop.0002_online... OK" in result.out
        assert "step " not in result.out
        recorded = steps(database)
        assert len(recorded) == 14
        assert any("CREATE INDEX CONCURRENTLY online_item_qty_idx" in d for _, _, d in recorded)
        assert leftovers(database) == []


def test_plain_migrate_without_online_execution_is_djangos(project):
    with fresh_database() as database:
        env = prepared(database, project, {"ONLINE": False})
        run_command(["migrate", APP, "0002"], env, expect=0)
        # Django applied it in one transaction, without step records.
        assert steps(database) == []
        assert query(
            database,
            "SELECT indisvalid FROM pg_index WHERE indexrelid = 'online_item_qty_idx'::regclass",
        ) == [(True,)]
