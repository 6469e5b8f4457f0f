"""The admin's "Tenant schemas" page (``run/fleet/``): each schema's state, as
``safemigrate_schemas --status`` reads it, with its last run and the fleet's summary.

The page is served by a django-tenants project (``tests/tenants_site``, with the admin:
``admin_settings``) in a process of its own, through Django's test client
(``manage.py fleet_page``, which prints what the page showed); the fleet is built and
deployed with the same settings.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.helpers import command_env, fresh_database, query, run_command

pytest.importorskip("django_tenants")

SETTINGS = "tests.tenants_site.admin_settings"
NEXT = {"SHOP_MIGRATIONS": "next"}
FLEET = "/admin/django_safemigrate/run/fleet/"
#: What a page that only reads runs (in the request's transaction, ATOMIC_REQUESTS).
READS = {"SELECT", "SET", "BEGIN", "COMMIT", "SAVEPOINT", "RELEASE"}


def _env(database: str, **extra: str) -> dict[str, str]:
    return command_env(database, module=SETTINGS, extra=extra)


def _fleet(database: str, tenants: int) -> list[str]:
    run_command(["migrate_schemas", "--shared", "-v", "0"], _env(database), expect=0)
    run_command(["make_tenants", str(tenants)], _env(database), expect=0)
    run_command(["migrate_schemas", "-v", "0"], _env(database), expect=0)
    return [f"tenant_{i:03d}" for i in range(1, tenants + 1)]


def _page(database: str, *queries: str, per_page: int = 0, **extra: str) -> dict[str, Any]:
    """What the page showed for each of ``queries`` (and the other users' status codes)."""
    argv = ["fleet_page", *queries, *(["--per-page", str(per_page)] if per_page else [])]
    return json.loads(run_command(argv, _env(database, **extra), expect=0).out)


def _status(database: str, tmp_path: Any, **extra: str) -> dict[str, Any]:
    report = tmp_path / "status.json"
    run_command(
        ["safemigrate_schemas", "--status", "--report-json", str(report)],
        _env(database, **extra),
        expect=0,
    )
    return dict(json.loads(report.read_text()))


def _states(page: dict[str, Any]) -> dict[str, tuple[str, int]]:
    """Per schema row: its state and the migrations it lacks, as the page shows them."""
    return {row["schema"]: (row["state"], int(row["cells"][2])) for row in page["rows"]}


def _written(database: str) -> list[tuple[Any, ...]]:
    """The ledger's rows and each schema's ``django_migrations`` rows, counted."""
    ledger = query(
        database,
        "SELECT (SELECT count(*) FROM django_safemigrate_run), "
        "(SELECT count(*) FROM django_safemigrate_migrationrecord), "
        "(SELECT count(*) FROM django_safemigrate_governedmigration)",
    )
    schemas = query(
        database,
        "SELECT nspname FROM pg_namespace "
        "WHERE to_regclass(quote_ident(nspname) || '.django_migrations') IS NOT NULL ORDER BY 1",
    )
    return ledger + [
        (schema, *query(database, f'SELECT count(*) FROM "{schema}".django_migrations')[0])
        for (schema,) in schemas
    ]


@pytest.fixture
def database() -> Iterator[str]:
    with fresh_database("tna") as name:
        yield name


def test_the_admin_shows_each_schemas_state_as_status_does(database, tmp_path):
    tenants = _fleet(database, 3)
    env = _env(database, **NEXT, DJANGO_SUPERUSER_PASSWORD="pw")
    run_command(
        ["createsuperuser", "--noinput", "--username", "rev", "--email", "rev@example.com"],
        env,
        expect=0,
    )
    run_command(
        ["reviewmigration", "shop", "0003", "--approve", "--note", "ok", "--as", "rev"],
        env,
        expect=0,
    )
    # tenant_002 holds a table named like the index the next release builds: its run fails.
    query(database, "CREATE TABLE tenant_002.shop_item_price_idx (x int)")
    run_command(["safemigrate_schemas", "-v", "0"], _env(database, **NEXT), expect=1)
    # A tenant made since the deploy: its schema is empty.
    run_command(["make_tenants", "4"], _env(database), expect=0)
    status = _status(database, tmp_path, **NEXT)
    before = _written(database)

    shown = _page(database, "", "?state=failed", "?p=2", per_page=3, **NEXT)
    everything, failed, second = shown["pages"]
    assert [page["status"] for page in shown["pages"]] == [200, 200, 200]
    # The same summary line and the same states as --status, from the same reads.
    assert everything["summary"] == status["summary"]
    assert status["summary"] == (
        "5 schemas (database 'default'): up to date 3, failed 1, pending 1"
    )
    expected = {s["schema"]: (s["state"], s["missing"]) for s in status["schemas"]}
    assert expected["tenant_002"] == ("failed", 1)
    assert expected["tenant_004"][0] == "pending"
    # Paginated: three schemas a page, in django-tenants' order, then the other two.
    assert [row["schema"] for row in everything["rows"]] == ["public", "tenant_001", "tenant_002"]
    assert [row["schema"] for row in second["rows"]] == ["tenant_003", "tenant_004"]
    assert _states(everything) | _states(second) == expected
    assert f"{FLEET}?p=2" in everything["links"]
    assert f"{FLEET}?state=failed" in everything["links"]
    # Filtered by state: only the failed schema, its last run linked to the ledger's row.
    (row,) = failed["rows"]
    ((last_run,),) = query(
        database, "SELECT max(id) FROM django_safemigrate_run WHERE schema = 'tenant_002'"
    )
    assert row["schema"] == "tenant_002"
    assert row["cells"][:4] == ["tenant_002", "failed", "1", f"run {last_run}: failed (exit 1)"]
    assert row["links"] == [f"/admin/django_safemigrate/run/{last_run}/change/"]
    assert row["cells"][5].startswith("Applying shop.0004_item_price_idx")
    assert failed["footer"] == "1 schema failed"
    # The tenant never migrated has no run; the others' last runs are shown too.
    (fresh,) = [r for r in second["rows"] if r["schema"] == "tenant_004"]
    assert fresh["cells"][3:5] == ["none", "-"]
    assert all(r["links"] for r in everything["rows"] if r["schema"] in tenants)

    # Who may see it: staff with the view permission on runs; the others are refused.
    assert shown["viewer"] == 200
    assert shown["staff_without_permission"] == 403
    assert shown["anonymous"] == 302  # to the admin's login page
    assert shown["post"] == 405
    assert shown["runs_link"] is True

    # It read and wrote nothing: every statement a read (and the request's transaction).
    for page in shown["pages"]:
        assert set(page["statements"]) <= READS, page["statements"]
    assert _written(database) == before
    # One query across the fleet, never one per schema: eight more tenants, same queries.
    run_command(["make_tenants", "12"], _env(database), expect=0)
    bigger = _page(database, "", per_page=3, **NEXT)["pages"][0]
    assert bigger["summary"] == (
        "13 schemas (database 'default'): up to date 3, failed 1, pending 9"
    )
    assert bigger["queries"] == everything["queries"]


def test_without_a_ledger_the_states_come_from_django_migrations(database, tmp_path):
    _fleet(database, 2)
    run_command(["make_tenants", "3"], _env(database), expect=0)
    # As before this app's tables were created: none of them.
    tables = query(
        database,
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename LIKE %s",
        ["django\\_safemigrate\\_%"],
    )
    query(database, f"DROP TABLE {', '.join(t for (t,) in tables)} CASCADE")
    status = _status(database, tmp_path)
    shown = _page(database, "")
    (page,) = shown["pages"]
    assert page["status"] == 200
    assert page["summary"] == status["summary"]
    assert status["summary"] == "4 schemas (database 'default'): up to date 3, pending 1"
    assert _states(page) == {s["schema"]: (s["state"], s["missing"]) for s in status["schemas"]}
    assert all(row["cells"][3] == "none" and not row["links"] for row in page["rows"])
    assert shown["viewer"] == 200
    # The missing table did not break the transaction that read it (ATOMIC_REQUESTS).
    assert shown["transaction_survives"] is True


def test_without_django_tenants_the_page_says_why(admin_client):
    # tests.settings: no django-tenants. The runs' list has no link; the page explains.
    runs = admin_client.get("/admin/django_safemigrate/run/")
    assert runs.status_code == 200
    assert FLEET not in runs.content.decode()
    page = admin_client.get(FLEET)
    assert page.status_code == 404
    assert "This project does not use django-tenants" in page.content.decode()
