"""A schema-per-tenant project (django-tenants, ``tests/tenants_site``) deployed with
``migrate_schemas``, governed as the README says, against the real PostgreSQL.

Each test builds its own fleet: the public schema migrated, tenants made, every schema at
the first release. The next release of the tenant app ``shop`` drops a column
(destructive) and adds an index concurrently in a non-atomic migration.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import ROOT, command_env, connect, fresh_database, manage, query, run_command

pytest.importorskip("django_tenants")

SETTINGS = "tests.tenants_site.settings"
NEXT = {"SHOP_MIGRATIONS": "next"}


def _env(database: str, **extra: str) -> dict[str, str]:
    return command_env(database, module=SETTINGS, extra=extra)


def _fleet(database: str, tenants: int) -> list[str]:
    run_command(["migrate_schemas", "--shared", "-v", "0"], _env(database), expect=0)
    run_command(["make_tenants", str(tenants)], _env(database), expect=0)
    run_command(["migrate_schemas", "-v", "0"], _env(database), expect=0)
    return [f"tenant_{i:03d}" for i in range(1, tenants + 1)]


def _columns(database: str, table: str, column: str) -> dict[str, bool]:
    """Per schema holding ``table``: whether it has ``column``."""
    rows = query(
        database,
        "SELECT n.nspname, bool_or(a.attname = %s) FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped "
        "WHERE c.relname = %s AND c.relkind = 'r' GROUP BY 1",
        [column, table],
    )
    return dict(rows)


def _valid_index(database: str, name: str) -> dict[str, bool]:
    rows = query(
        database,
        "SELECT n.nspname, x.indisvalid FROM pg_class i JOIN pg_index x ON x.indexrelid = i.oid "
        "JOIN pg_namespace n ON n.oid = i.relnamespace WHERE i.relname = %s",
        [name],
    )
    return dict(rows)


def _recorded(database: str, schema: str, name: str) -> int:
    return int(
        query(
            database,
            f'SELECT count(*) FROM "{schema}".django_migrations WHERE app = %s AND name = %s',
            ["shop", name],
        )[0][0]
    )


def _approve(database: str) -> None:
    env = _env(database, **NEXT, DJANGO_SUPERUSER_PASSWORD="pw")
    run_command(
        ["createsuperuser", "--noinput", "--username", "rev", "--email", "rev@example.com"],
        env,
        expect=0,
    )
    run_command(
        ["reviewmigration", "shop", "0003", "--approve", "--note", "unused", "--as", "rev"],
        env,
        expect=0,
    )


@pytest.fixture
def database() -> Iterator[str]:
    with fresh_database("tn") as name:
        yield name


def test_system_checks_catch_a_fleet_that_would_be_migrated_ungoverned(database):
    # django-tenants' default: migrate_schemas runs Django's migrate once per schema.
    ungoverned = run_command(
        ["migrate_schemas"], _env(database, TENANT_BASE_MIGRATE_COMMAND="django"), expect=1
    )
    assert "safemigrate.E036" in ungoverned.err
    # It stopped before migrating any schema.
    assert query(database, "SELECT to_regclass('public.django_migrations')") == [(None,)]
    broken = run_command(
        ["check"], _env(database, TENANT_BASE_MIGRATE_COMMAND="nowhere.Command"), expect=1
    )
    assert "safemigrate.E036" in broken.err
    assert "cannot be imported" in broken.err
    per_tenant = run_command(
        ["check"],
        _env(
            database,
            TENANT_BASE_MIGRATE_COMMAND="django_safemigrate.management.commands.migrate.Command",
            SAFEMIGRATE_IN_TENANT_APPS="1",
        ),
        expect=1,
    )
    assert "safemigrate.E037" in per_tenant.err
    assert "safemigrate.W005" in per_tenant.err
    assert "safemigrate.E036" not in per_tenant.err
    clean = run_command(["check"], _env(database), expect=0)
    assert "no issues" in clean.out
    # A fleet deploy checks the project once, not once per schema (three tenants here).
    _fleet(database, 3)
    warned = run_command(
        ["safemigrate_schemas", "--every-schema"],
        _env(
            database,
            TENANT_BASE_MIGRATE_COMMAND="django_safemigrate.management.commands.migrate.Command",
        ),
        expect=0,
    )
    assert warned.err.count("safemigrate.W005") == 1, warned.err


def test_checkmigrations_judges_a_tenant_apps_migration_where_it_runs(database):
    # On the public schema the router makes the tenant app's RemoveField a no-op; it
    # still drops a column in every tenant.
    _fleet(database, 1)
    for extra in ([], ["--offline"]):
        result = run_command(
            ["checkmigrations", "shop", "--all", "--format", "json", *extra],
            _env(database, **NEXT),
            expect=1,
        )
        report = json.loads(result.out)
        risks = {m["name"]: m["risk"] for m in report["migrations"]}
        assert risks["0003_remove_item_note"] == "destructive", extra
        codes = {f["code"] for m in report["migrations"] for f in m["findings"]}
        assert "SM201" in codes


def test_one_review_covers_the_fleet_and_nothing_moves_before_it(database):
    tenants = _fleet(database, 3)
    blocked = run_command(["migrate_schemas"], _env(database, **NEXT), expect=3)
    assert "shop.0003_remove_item_note needs a review (destructive)" in blocked.err
    # Stopped at the public schema, before any tenant: every tenant still has the column
    # and no tenant recorded either migration.
    assert _columns(database, "shop_item", "note") == {t: True for t in tenants}
    assert all(_recorded(database, t, "0003_remove_item_note") == 0 for t in tenants)

    _approve(database)
    run_command(["migrate_schemas"], _env(database, **NEXT), expect=0)
    assert _columns(database, "shop_item", "note") == {t: False for t in tenants}
    assert _valid_index(database, "shop_item_price_idx") == {t: True for t in tenants}
    for schema in ["public", *tenants]:
        assert _recorded(database, schema, "0003_remove_item_note") == 1
        assert _recorded(database, schema, "0004_item_price_idx") == 1
    assert query(database, "SELECT count(*) FROM django_safemigrate_review") == [(1,)]
    # Each schema's run is in the one ledger, with its schema and the real command line.
    runs = query(
        database,
        "SELECT schema, outcome, argv FROM django_safemigrate_run WHERE argv LIKE %s ORDER BY id",
        ["%migrate_schemas (running safemigrate)"],
    )
    last = {schema: outcome for schema, outcome, _argv in runs}
    assert last == {"public": "applied", **{t: "applied" for t in tenants}}
    # In the public schema the next release's migrations were no-ops (the router): the
    # non-atomic one still ran outside a transaction, as AddIndexConcurrently demands.
    assert not query(
        database,
        "SELECT 1 FROM pg_indexes WHERE schemaname = 'public' AND indexname = %s",
        ["shop_item_price_idx"],
    )
    # Per schema: --check says whether anything is left to apply.
    run_command(["migrate_schemas", "--check"], _env(database, **NEXT), expect=0)


@pytest.mark.once
@pytest.mark.slow
def test_parallel_executors_and_two_pods_at_once_migrate_every_tenant_once(database):
    tenants = _fleet(database, 8)
    run_command(["migrate_schemas", "-v", "0"], _env(database, **NEXT), expect=3)
    _approve(database)
    # Two deploys at once, each fanning out in its own way.
    pods = [
        subprocess.Popen(
            manage("migrate_schemas", "--executor=multiprocessing"),
            env=_env(database, **NEXT, TENANT_MULTIPROCESSING_MAX_PROCESSES="4"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
        ),
        subprocess.Popen(
            manage("migrate_schemas", "--executor=subprocess", "--parallel", "3"),
            env=_env(database, **NEXT),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
        ),
    ]
    started = time.monotonic()
    outputs = [pod.communicate(timeout=300) for pod in pods]
    assert time.monotonic() - started < 300
    for pod, (out, err) in zip(pods, outputs, strict=True):
        assert pod.returncode == 0, f"stdout:\n{out}\nstderr:\n{err}"
        assert "terminat" not in (out + err).lower()
    assert _columns(database, "shop_item", "note") == {t: False for t in tenants}
    assert _valid_index(database, "shop_item_price_idx") == {t: True for t in tenants}
    for schema in ["public", *tenants]:
        assert _recorded(database, schema, "0003_remove_item_note") == 1, schema
        assert _recorded(database, schema, "0004_item_price_idx") == 1, schema
    # Every schema's migrations were applied by exactly one run; no run failed or was
    # cut short, and no runner session was terminated by another.
    applied_by = query(
        database,
        "SELECT r.schema, count(DISTINCT r.id) FROM django_safemigrate_run r "
        "JOIN django_safemigrate_migrationrecord m ON m.run_id = r.id "
        "WHERE m.name = '0003_remove_item_note' GROUP BY 1",
    )
    assert dict(applied_by) == {s: 1 for s in ["public", *tenants]}
    outcomes = query(
        database,
        "SELECT DISTINCT outcome FROM django_safemigrate_run WHERE argv LIKE %s",
        ["%--executor=%"],
    )
    assert {o for (o,) in outcomes} <= {"applied", "nothing_to_do"}


# -- safemigrate_schemas -------------------------------------------------------------------


def _report(path) -> dict[str, str]:
    document = json.loads(path.read_text())
    return {s["schema"]: s["outcome"] for s in document["schemas"]}


def _runs_per_schema(database: str) -> dict[str, int]:
    return dict(query(database, "SELECT schema, count(*) FROM django_safemigrate_run GROUP BY 1"))


def test_fleet_deploy_isolates_a_failing_schema_and_then_visits_only_it(database, tmp_path):
    tenants = _fleet(database, 5)
    _approve(database)
    # tenant_002 holds a table named like the index the next release builds concurrently.
    query(database, "CREATE TABLE tenant_002.shop_item_price_idx (x int)")
    report = tmp_path / "report.json"
    failed = run_command(
        ["safemigrate_schemas", "--executor=multiprocessing", "--report-json", str(report)],
        _env(database, **NEXT, TENANT_MULTIPROCESSING_MAX_PROCESSES="3"),
        expect=1,
    )
    assert "6 schemas: applied 5, failed 1 (tenant_002: Applying shop.0004" in failed.err
    outcomes = _report(report)
    assert outcomes == {
        "public": "applied",
        **{t: "applied" for t in tenants if t != "tenant_002"},
        "tenant_002": "failed",
    }
    assert json.loads(report.read_text())["exit_code"] == 1
    assert _valid_index(database, "shop_item_price_idx") == {
        t: True for t in tenants if t != "tenant_002"
    }
    assert _recorded(database, "tenant_002", "0003_remove_item_note") == 1
    assert _recorded(database, "tenant_002", "0004_item_price_idx") == 0

    # The fleet's state, from one query, changing nothing.
    before = _runs_per_schema(database)
    status = tmp_path / "status.json"
    shown = run_command(
        ["safemigrate_schemas", "--status", "--report-json", str(status)],
        _env(database, **NEXT),
        expect=0,
    )
    assert "6 schemas (database 'default'): up to date 5, failed 1" in shown.out
    assert "tenant_002: failed, 1 migration(s) to apply; last run ended" in shown.out
    document = json.loads(status.read_text())
    assert {s["schema"]: (s["state"], s["missing"]) for s in document["schemas"]} == {
        "public": ("up_to_date", 0),
        **{t: ("up_to_date", 0) for t in tenants if t != "tenant_002"},
        "tenant_002": ("failed", 1),
    }
    assert document["counts"] == {"up_to_date": 5, "failed": 1}
    assert _runs_per_schema(database) == before

    query(database, "DROP TABLE tenant_002.shop_item_price_idx")
    fixed = run_command(
        ["safemigrate_schemas", "--executor=subprocess", "--parallel", "2"],
        _env(database, **NEXT),
        expect=0,
    )
    assert "4 of 5 tenant schema(s) have nothing to apply; migrating 1." in fixed.out
    assert "6 schemas: nothing to do 5, applied 1" in fixed.out
    after = _runs_per_schema(database)
    # Only the public schema and the schema with work had a run.
    assert {s: after[s] - before.get(s, 0) for s in after if after[s] != before.get(s, 0)} == {
        "public": 1,
        "tenant_002": 1,
    }
    assert _valid_index(database, "shop_item_price_idx") == {t: True for t in tenants}


@pytest.mark.once
def test_a_tenant_whose_history_lost_records_stops_alone(database, tmp_path):
    # Each schema's history in the ledger has its own high-water mark: rows of one tenant
    # deleted (triggers off) stop that tenant's runs, not the fleet's.
    _fleet(database, 3)
    marks = dict(query(database, "SELECT schema, runs FROM django_safemigrate_schemamark"))
    assert set(marks) == {"public", "tenant_001", "tenant_002", "tenant_003"}
    with connect(database) as conn:
        conn.execute("SET session_replication_role = replica")
        for table in ("migrationrecord", "steprecord"):
            conn.execute(
                f"DELETE FROM django_safemigrate_{table} WHERE run_id IN "
                "(SELECT id FROM django_safemigrate_run WHERE schema = 'tenant_002')"
            )
        conn.execute("DELETE FROM django_safemigrate_run WHERE schema = 'tenant_002'")
    report = tmp_path / "report.json"
    stopped = run_command(
        ["safemigrate_schemas", "--every-schema", "--report-json", str(report)],
        _env(database),
        expect=3,
    )
    assert "The migration ledger has lost records for schema 'tenant_002'" in stopped.err
    assert _report(report) == {
        "public": "nothing_to_do",
        "tenant_001": "nothing_to_do",
        "tenant_002": "blocked",
        "tenant_003": "nothing_to_do",
    }


def _sessions(database: str) -> int:
    """Sessions opened on the database so far (less the one asking)."""
    time.sleep(1.2)  # the server publishes a session's statistics within a second
    ((count,),) = query(
        database, "SELECT sessions FROM pg_stat_database WHERE datname = current_database()"
    )
    return int(count) - 1


@pytest.mark.once
def test_a_fleet_deploy_takes_every_schemas_lock_on_one_session(database):
    # django-tenants opens a connection per schema for the migrations themselves; the
    # locks, one per schema, are taken one after another on the same lock session.
    schemas = len(_fleet(database, 6)) + 1
    before = _sessions(database)
    run_command(["safemigrate_schemas", "--every-schema", "-v", "0"], _env(database), expect=0)
    opened = _sessions(database) - before - 1
    assert opened <= schemas + 3, opened  # one lock session per schema would be 2 x schemas


@pytest.mark.once
def test_fleet_deploy_stops_every_tenant_when_the_public_schema_is_blocked(database, tmp_path):
    tenants = _fleet(database, 2)
    report = tmp_path / "report.json"
    blocked = run_command(
        ["safemigrate_schemas", "--report-json", str(report)], _env(database, **NEXT), expect=3
    )
    assert "3 schemas: blocked 1 (public: Blocked by governance" in blocked.err
    assert _report(report) == {"public": "blocked", **{t: "not_run" for t in tenants}}
    assert _columns(database, "shop_item", "note") == {t: True for t in tenants}


@pytest.mark.once
def test_fleet_deploy_canary_stops_at_its_first_failure(database, tmp_path):
    tenants = _fleet(database, 4)
    _approve(database)
    query(database, "CREATE TABLE tenant_001.shop_item_price_idx (x int)")
    report = tmp_path / "report.json"
    run_command(
        ["safemigrate_schemas", "--canary", "2", "--report-json", str(report)],
        _env(database, **NEXT),
        expect=1,
    )
    assert _report(report) == {
        "public": "applied",
        "tenant_001": "failed",
        **{t: "not_run" for t in tenants[1:]},
    }
    assert _columns(database, "shop_item", "note") == {"tenant_001": False} | {
        t: True for t in tenants[1:]
    }


@pytest.mark.once
def test_fleet_deploy_refuses_bad_usage_before_reading_anything(database, tmp_path):
    _fleet(database, 1)
    cases = [
        (["--shard", "4/4"], "is not INDEX/COUNT"),
        (["--shard", "x"], "is not INDEX/COUNT"),
        (["--executor", "threads"], "is not one of standard, multiprocessing, subprocess"),
        (["--schema", "tenant_999"], "There is no schema 'tenant_999'"),
        (["--report-json", str(tmp_path / "missing" / "r.json")], "does not exist"),
    ]
    before = _runs_per_schema(database)
    for argv, message in cases:
        result = run_command(["safemigrate_schemas", *argv], _env(database, **NEXT), expect=2)
        assert message in result.err, argv
    assert _runs_per_schema(database) == before


def test_the_fleet_query_finds_exactly_the_schemas_missing_a_migration(database):
    from django_safemigrate.tenants import schemas_with_work
    from tests.helpers import connect

    table = "django_migrations (id serial, app text, name text, applied timestamptz)"
    for schema, rows in [
        ("done", "('a', '1'), ('a', '2'), ('b', '1')"),
        # a.1 twice and something unrelated, but never b.1.
        ("twice", "('a', '1'), ('a', '1'), ('a', '2'), ('c', '9')"),
        ("Mixed Case", "('a', '1'), ('a', '2'), ('b', '1')"),
    ]:
        query(database, f'CREATE SCHEMA "{schema}"')
        query(database, f'CREATE TABLE "{schema}".{table}')
        query(database, f'INSERT INTO "{schema}".django_migrations (app, name) VALUES {rows}')
    query(database, "CREATE SCHEMA empty")

    class Ops:
        @staticmethod
        def quote_name(name: str) -> str:
            return '"' + name.replace('"', '""') + '"'

    with connect(database) as conn:
        connection = type("Connection", (), {"ops": Ops, "cursor": conn.cursor})()
        found = schemas_with_work(
            connection, ["done", "twice", "Mixed Case", "empty", "absent"], ["a.1", "a.2", "b.1"]
        )
    assert found == ["twice", "empty", "absent"]


@pytest.mark.once
@pytest.mark.slow
def test_the_indexed_job_recipe_shards_run_at_once_and_migrate_every_schema_once(database):
    import shlex

    import yaml

    job = yaml.safe_load((ROOT / "docs/recipes/tenants/safemigrate-schemas-job.yaml").read_text())
    spec = job["spec"]
    (container,) = spec["template"]["spec"]["containers"]
    tenants = _fleet(database, 9)
    _approve(database)
    pods = []
    for index in range(spec["completions"]):
        # Kubernetes expands $(JOB_COMPLETION_INDEX) from the pod's environment.
        argv = [w.replace("$(JOB_COMPLETION_INDEX)", str(index)) for w in container["command"]]
        assert argv[:2] == ["python", "manage.py"], shlex.join(argv)
        pods.append(
            subprocess.Popen(
                manage(*argv[2:]),
                env=_env(database, **NEXT, JOB_COMPLETION_INDEX=str(index)),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                cwd=ROOT,
                stdin=subprocess.DEVNULL,
            )
        )
    outputs = [pod.communicate(timeout=300) for pod in pods]
    for pod, (out, err) in zip(pods, outputs, strict=True):
        assert pod.returncode == 0, f"stdout:\n{out}\nstderr:\n{err}"
    assert _columns(database, "shop_item", "note") == {t: False for t in tenants}
    assert _valid_index(database, "shop_item_price_idx") == {t: True for t in tenants}
    # Each tenant schema was run by one pod only; the public schema by each pod, applied
    # by one of them.
    runs = _runs_per_schema(database)
    deploy = query(
        database,
        "SELECT schema, outcome FROM django_safemigrate_run WHERE argv LIKE %s",
        ["%safemigrate_schemas%"],
    )
    applied_public = [o for s, o in deploy if s == "public" and o == "applied"]
    assert len(applied_public) == 1
    for tenant in tenants:
        assert [o for s, o in deploy if s == tenant] == ["applied"], (tenant, runs)


# -- killed processes of the multiprocessing engine ------------------------------------------


def _child_pids(pid: int) -> list[int]:
    """The live processes whose parent is ``pid`` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces, the last ')' ends it.
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(entry.name))
    return found


def _pool_workers(pid: int) -> list[int]:
    """The pool's workers: forked children running the parent's own command line
    (multiprocessing's resource tracker, a child too, runs another)."""
    own = Path(f"/proc/{pid}/cmdline").read_bytes()
    workers = []
    for child in _child_pids(pid):
        try:
            if Path(f"/proc/{child}/cmdline").read_bytes() == own:
                workers.append(child)
        except OSError:
            continue
    return workers


def _waiting_on_locks(database: str) -> int:
    ((count,),) = query(
        database,
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND wait_event_type = 'Lock' AND query LIKE 'ALTER TABLE%%'",
    )
    return int(count)


def _runner_sessions(database: str) -> int:
    ((count,),) = query(
        database,
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND pid <> pg_backend_pid()",
    )
    return int(count)


def _until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.2)


def _stalled_pool(database: str, tenants: list[str], report: Path):
    """A multiprocessing fleet deploy whose two workers wait on tenant tables this test
    holds locked: (the locking connection, the deploy's process, its workers)."""
    holder = connect(database)
    holder.autocommit = False
    tables = ", ".join(f"{t}.shop_item" for t in tenants)
    holder.execute(f"LOCK TABLE {tables} IN ACCESS EXCLUSIVE MODE")
    pod = subprocess.Popen(
        manage("safemigrate_schemas", "--executor=multiprocessing", "--report-json", str(report)),
        env=_env(
            database,
            **NEXT,
            TENANT_MULTIPROCESSING_MAX_PROCESSES="2",
            SAFEMIGRATE_JSON=json.dumps({"LOCK_TIMEOUT": 120}),
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
    )
    _until(lambda: _waiting_on_locks(database) == 2, 90, "both workers waiting on a lock")
    workers = _pool_workers(pod.pid)
    assert len(workers) == 2, workers
    return holder, pod, workers


def _consistent(database: str, tenants: list[str]) -> None:
    """Each tenant has its column dropped exactly when it recorded the migration."""
    columns = _columns(database, "shop_item", "note")
    for tenant in tenants:
        recorded = _recorded(database, tenant, "0003_remove_item_note")
        assert recorded == (0 if columns[tenant] else 1), (tenant, columns[tenant], recorded)


@pytest.mark.slow
def test_a_killed_pool_worker_fails_its_schema_and_the_run_ends(database, tmp_path):
    # A worker killed (SIGKILL, out of memory) mid-migration: the run does not wait for it
    # forever; the schemas it had not finished end as failed, and the next run resumes.
    tenants = _fleet(database, 3)
    _approve(database)
    report = tmp_path / "report.json"
    holder, pod, workers = _stalled_pool(database, tenants, report)
    try:
        os.kill(workers[0], signal.SIGKILL)
        holder.rollback()
        out, err = pod.communicate(timeout=120)
    finally:
        holder.close()
        if pod.poll() is None:
            pod.kill()
    assert pod.returncode == 1, out + err
    outcomes = _report(report)
    assert outcomes["public"] == "applied"
    failed = [t for t in tenants if outcomes[t] == "failed"]
    assert failed, outcomes
    assert set(outcomes.values()) <= {"applied", "failed"}, outcomes
    document = json.loads(report.read_text())
    errors = {s["schema"]: s["error"] or "" for s in document["schemas"]}
    assert any("a worker process of the pool died" in errors[t] for t in failed), errors
    _consistent(database, tenants)
    _until(lambda: _runner_sessions(database) == 0, 15, "no session left open")
    # The next deploy applies what the killed run left undone.
    run_command(["safemigrate_schemas", "-v", "0"], _env(database, **NEXT), expect=0)
    assert _columns(database, "shop_item", "note") == {t: False for t in tenants}
    _consistent(database, tenants)


@pytest.mark.slow
def test_the_pool_workers_of_a_killed_deploy_end_with_it(database, tmp_path):
    # The deploy's own process killed: its workers, orphaned while they wait with a
    # session open (and the schemas' locks), end within seconds instead of for ever.
    tenants = _fleet(database, 3)
    _approve(database)
    holder, pod, workers = _stalled_pool(database, tenants, tmp_path / "report.json")
    try:
        pod.kill()
        pod.communicate(timeout=30)
        _until(
            lambda: not any(Path(f"/proc/{w}").exists() for w in workers),
            15,
            "the orphaned workers ended",
        )
    finally:
        holder.rollback()
        holder.close()
    _until(lambda: _runner_sessions(database) == 0, 15, "no session left open")
    _consistent(database, tenants)
    run_command(["safemigrate_schemas", "-v", "0"], _env(database, **NEXT), expect=0)
    assert _columns(database, "shop_item", "note") == {t: False for t in tenants}
    _consistent(database, tenants)


@pytest.mark.once
def test_fleet_plan_shows_where_each_schema_stands_then_its_plan(database):
    tenants = _fleet(database, 3)
    # tenant_002 is a release behind the others already (as after a failed deploy).
    run_command(
        ["migrate_schemas", "--schema", "tenant_002", "shop", "0001", "-v", "0"],
        _env(
            database,
            TENANT_BASE_MIGRATE_COMMAND="django",
            SILENCED_SYSTEM_CHECKS="safemigrate.E036",
        ),
        expect=0,
    )
    shown = run_command(["safemigrate_schemas", "--plan"], _env(database), expect=0)
    assert "4 schemas (database 'default'): up to date 3, pending 1" in shown.out, shown.out
    assert "  tenant_002: pending, 1 migration(s) to apply" in shown.out
    # Then each schema's own plan; nothing was applied.
    assert "shop.0002_item_name_idx" in shown.out
    assert _recorded(database, "tenant_002", "0002_item_name_idx") == 0
    assert {t: _recorded(database, t, "0002_item_name_idx") for t in tenants} == {
        "tenant_001": 1,
        "tenant_002": 0,
        "tenant_003": 1,
    }
