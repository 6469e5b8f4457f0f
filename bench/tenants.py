"""How long does a deploy over a fleet of tenant schemas take, governed, next to
django-tenants' plain ``migrate_schemas``?

The project is ``tests/tenants_site`` (django-tenants, one tenant app ``shop``). For each
fleet size N (``--tenants``), a template database gets the public schema migrated, N
tenants, and every tenant schema at the first release: ``tenant_001`` through
``migrate_schemas``, the others as copies of its tables and rows (``CREATE TABLE ...
(LIKE ... INCLUDING ALL)``, so index names differ from Django's; nothing here reads them).
Then one governed run visits every schema (``safemigrate_schemas --every-schema``): the
ledger holds each schema's applied migrations, as in a fleet governed since an earlier
release (a fleet's very first governed run adopts them, once).
Each sample copies the template (``CREATE DATABASE ... TEMPLATE``), runs one deploy in a
child process and checks its result. Two deploys:

``no-op``
    the release every schema already has: nothing to apply anywhere;
``one new``
    the next release, one new migration of the tenant app (``AddField``, a nullable
    column) to apply in every tenant schema.

Three variants of each, side by side in every round (shuffled order):

``plain``
    ``manage.py migrate_schemas`` running Django's own ``migrate`` per schema
    (django-tenants' default ``TENANT_BASE_MIGRATE_COMMAND``; ``safemigrate.E036``
    silenced): no lock, no ledger, no review;
``governed``
    ``manage.py migrate_schemas`` with ``TENANT_BASE_MIGRATE_COMMAND`` set to
    ``safemigrate`` as the README says: every schema gets a governed run;
``fleet``
    ``manage.py safemigrate_schemas``: the public schema's governed run, one query across
    the fleet, then a governed run in each schema with work.

Each on django-tenants' ``standard`` executor (one schema after another) and on its
``multiprocessing`` executor with ``--processes`` workers. Every child must exit 0; after
``one new``, every tenant schema must have the new column and have recorded the migration.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \\
        python bench/tenants.py --tenants 50 --rounds 3
    python bench/tenants.py --tenants 50 1000 --rounds 3 --write
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import os
import platform
import random
import secrets
import statistics
import subprocess
import sys
import time
from pathlib import Path

import psycopg
from psycopg import sql

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    REPO_ROOT,
    copy_database,
    cpu_model,
    create_database,
    drop_database,
    git_revision,
    output_tails,
    reproduce_command,
    reproduce_lines,
    server_url,
    server_version,
    update_benchmarks,
    with_database,
)

TITLE = "Tenant fleets"
SETTINGS = "tests.tenants_site.settings"
VARIANTS = ("plain", "governed", "fleet")
DEPLOYS = ("no-op", "one new")
MODES = ("standard", "multiprocessing")
GOVERNED = "django_safemigrate.management.commands.safemigrate.Command"


def child_env(url: str, variant: str, deploy: str, processes: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SAFEMIGRATE")}
    env.update(
        DJANGO_SETTINGS_MODULE=SETTINGS,
        DATABASE_URL=url,
        PYTHONPATH=str(REPO_ROOT),
        TENANT_MULTIPROCESSING_MAX_PROCESSES=str(processes),
    )
    env.pop("SHOP_MIGRATIONS", None)
    if deploy == "one new":
        env["SHOP_MIGRATIONS"] = "bench"
    if variant == "plain":
        env["TENANT_BASE_MIGRATE_COMMAND"] = "django"
        env["SILENCED_SYSTEM_CHECKS"] = "safemigrate.E036"
    else:
        env["TENANT_BASE_MIGRATE_COMMAND"] = GOVERNED
    return env


def manage(url: str, *argv: str, env: dict[str, str] | None = None) -> float:
    """Run ``manage.py ARGV`` on ``url``; its wall-clock seconds. Stops on a failure."""
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "manage.py"), *argv],
        env=env or child_env(url, "governed", "no-op", 2),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(
            f"manage.py {' '.join(argv)} exited {result.returncode}\n" + output_tails(result)
        )
    return elapsed


def build_template(maintenance: str, name: str, tenants: int) -> None:
    """The public schema migrated, ``tenants`` tenants, each schema at the first release."""
    create_database(maintenance, name)
    url = with_database(maintenance, name)
    manage(url, "migrate_schemas", "--shared", "-v", "0")
    manage(url, "make_tenants", str(tenants))
    manage(url, "migrate_schemas", "--schema", "tenant_001", "-v", "0")
    with psycopg.connect(url, autocommit=False) as conn:
        tables = [
            row[0]
            for row in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'tenant_001' ORDER BY 1"
            )
        ]
        for index in range(2, tenants + 1):
            if index % 50 == 0:
                conn.commit()  # each table's locks last to the commit: keep under the limit
            for table in tables:
                source = sql.Identifier("tenant_001", table)
                target = sql.Identifier(f"tenant_{index:03d}", table)
                conn.execute(
                    sql.SQL("CREATE TABLE {} (LIKE {} INCLUDING ALL)").format(target, source)
                )
                conn.execute(sql.SQL("INSERT INTO {} SELECT * FROM {}").format(target, source))
                # The copy's own identity sequence continues after the rows copied.
                conn.execute(
                    sql.SQL(
                        "SELECT setval(pg_get_serial_sequence({}, 'id'), max(id)) FROM {} "
                        "HAVING max(id) IS NOT NULL"
                    ).format(sql.Literal(f'"tenant_{index:03d}"."{table}"'), target)
                )
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE")
    # A fleet governed since before this release: the first governed run of every schema
    # adopted its applied migrations into the ledger, as a real fleet's did long ago.
    manage(url, "safemigrate_schemas", "--every-schema", "-v", "0")


def check_result(url: str, deploy: str, tenants: int) -> None:
    if deploy != "one new":
        return
    with psycopg.connect(url, autocommit=True) as conn:
        columns = conn.execute(
            "SELECT count(*) FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relname = 'shop_item' "
            "AND a.attname = 'sku' AND n.nspname LIKE 'tenant\\_%'"
        ).fetchone()
        recorded = conn.execute(
            "SELECT count(*) FROM pg_namespace n WHERE n.nspname LIKE 'tenant\\_%' AND "
            "(xpath('/row/c/text()', query_to_xml(format('SELECT count(*) AS c FROM "
            "%I.django_migrations WHERE app = ''shop'' AND name = ''0003_item_sku''', "
            "n.nspname), false, true, '')))[1]::text::int = 1"
        ).fetchone()
    if columns != (tenants,) or recorded != (tenants,):
        raise SystemExit(
            f"one new: {columns[0] if columns else 0} of {tenants} tenant schemas have the "
            f"column, {recorded[0] if recorded else 0} recorded the migration"
        )


def command(variant: str, mode: str) -> list[str]:
    name = "safemigrate_schemas" if variant == "fleet" else "migrate_schemas"
    return [name, f"--executor={mode}", "-v", "0"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, nargs="+", default=[50])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--write", action="store_true", help="Rewrite the BENCHMARKS.md section.")
    args = parser.parse_args(argv)
    maintenance = server_url("bench/tenants.py")
    seed = args.seed if args.seed is not None else random.randrange(2**31)
    rng = random.Random(seed)
    load_before = os.getloadavg()
    results: dict[tuple[int, str, str, str], list[float]] = {}
    token = secrets.token_hex(4)
    for tenants in args.tenants:
        template = f"bench_tenants_{tenants}_{token}"
        print(f"N={tenants}: building the template ...", flush=True)
        started = time.perf_counter()
        try:
            build_template(maintenance, template, tenants)
            print(
                f"N={tenants}: template built in {time.perf_counter() - started:.0f} s", flush=True
            )
            for round_ in range(args.rounds):
                cases = [(d, m, v) for d in DEPLOYS for m in MODES for v in VARIANTS]
                rng.shuffle(cases)
                for deploy, mode, variant in cases:
                    name = f"{template}_s"
                    copy_database(maintenance, template, name)
                    url = with_database(maintenance, name)
                    try:
                        seconds = manage(
                            url,
                            *command(variant, mode),
                            env=child_env(url, variant, deploy, args.processes),
                        )
                        check_result(url, deploy, tenants)
                    finally:
                        drop_database(maintenance, name)
                    results.setdefault((tenants, deploy, mode, variant), []).append(seconds)
                    print(
                        f"N={tenants} round {round_ + 1}: {deploy}, {mode}, {variant}: "
                        f"{seconds:.2f} s",
                        flush=True,
                    )
        finally:
            drop_database(maintenance, template)
    load_after = os.getloadavg()
    lines = table(results, args.tenants)
    print("\n".join(lines))
    if args.write:
        section = document(args, argv, maintenance, seed, lines, load_before, load_after)
        update_benchmarks(REPO_ROOT / "BENCHMARKS.md", TITLE, section)


def table(results: dict[tuple[int, str, str, str], list[float]], sizes: list[int]) -> list[str]:
    lines = [
        "| tenants | deploy | executor | plain `migrate_schemas` | governed `migrate_schemas` "
        "| `safemigrate_schemas` | governed / plain | `safemigrate_schemas` / plain |",
        "|--:|---|---|--:|--:|--:|--:|--:|",
    ]
    for tenants in sizes:
        for deploy in DEPLOYS:
            for mode in MODES:
                medians = {
                    v: statistics.median(results[(tenants, deploy, mode, v)]) for v in VARIANTS
                }
                lines.append(
                    f"| {tenants} | {deploy} | {mode} | {medians['plain']:.2f} s | "
                    f"{medians['governed']:.2f} s | {medians['fleet']:.2f} s | "
                    f"{medians['governed'] / medians['plain']:.2f} | "
                    f"{medians['fleet'] / medians['plain']:.2f} |"
                )
    return lines


def document(  # noqa: PLR0917 - what the section says, from main()
    args: argparse.Namespace,
    argv: list[str] | None,
    maintenance: str,
    seed: int,
    lines: list[str],
    load_before: tuple[float, float, float],
    load_after: tuple[float, float, float],
) -> str:
    versions = ", ".join(
        f"{package} {importlib.metadata.version(package)}"
        for package in ("Django", "django-tenants", "psycopg")
    )
    shown = list(argv if argv is not None else sys.argv[1:])
    text = [
        f"## {TITLE}",
        "",
        "`bench/tenants.py`: one deploy over a django-tenants fleet (`tests/tenants_site`), "
        "in a child process, on a fresh copy of a template database per sample. `no-op`: "
        "every schema already has the release; `one new`: one new tenant-app migration "
        "(a nullable column) for every tenant schema. The template fleet has been governed "
        "since its first release (the ledger holds every schema's applied migrations). "
        "Plain `migrate_schemas` runs Django's "
        "own `migrate` per schema (django-tenants' default: no lock, ledger or review); "
        "governed `migrate_schemas` runs `safemigrate` per schema "
        "(`TENANT_BASE_MIGRATE_COMMAND`, as the README says); `safemigrate_schemas` runs the "
        "public schema's governed run, one query across the fleet, then a governed run in "
        "each schema with work. `multiprocessing`: django-tenants' executor with "
        f"{args.processes} worker processes. Wall-clock seconds of the whole child, "
        "medians over the rounds; every variant of a round runs in a shuffled order on the "
        "same machine, one after another.",
        "",
        f"- Date: {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC",
        f"- Machine: {cpu_model()}, {os.cpu_count()} cores, {platform.system()} "
        f"{platform.release()}; shared with other work, load average "
        f"{' / '.join(f'{x:.2f}' for x in load_before)} before, "
        f"{' / '.join(f'{x:.2f}' for x in load_after)} after",
        f"- Python {platform.python_version()}, {versions}, PostgreSQL "
        f"{server_version(maintenance)}",
        f"- Code: {git_revision(('django_safemigrate', 'bench', 'tests/tenants_site'))}",
        f"- Rounds: {args.rounds}; seed {seed}",
        "",
        *lines,
        "",
        *reproduce_lines(
            reproduce_command("bench/tenants.py", [*shown, "--seed", str(seed)], None)
        ),
        "",
    ]
    return "\n".join(text)


if __name__ == "__main__":
    main()
