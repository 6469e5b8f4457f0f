"""Kill fleet deploys at random and check that no tenant schema is left wrong.

A django-tenants fleet (``tests/tenants_site``, ``--tenants`` schemas at the first
release) is deployed to its next release: ``shop.0003_remove_item_note`` (destructive,
approved once on the template) and ``shop.0004_item_price_idx`` (``CREATE INDEX
CONCURRENTLY``, non-atomic). Each trial copies the template and starts two deploys at
once, as two pods would: ``safemigrate_schemas --executor=multiprocessing`` and
``migrate_schemas --executor=subprocess --parallel 2`` (each schema governed through
``TENANT_BASE_MIGRATE_COMMAND``). After a random delay one process of either deploy (a
pod, a pool worker or a per-schema child) is killed with SIGKILL. When both deploys have
ended, the state is checked, then one more ``safemigrate_schemas`` must finish the fleet
(exit 0) and the state is checked again.

Checked in every schema, after the kill and after the recovery run:

- recorded but not applied: ``0003`` recorded while the column still exists, or ``0004``
  recorded without a valid index;
- after the recovery run, every schema on the release (column gone, valid index, both
  migrations recorded once) and no INVALID index left behind;
- no deploy's output says a session was terminated (runner-session cleanup must only
  ever end its own schema's dead runner sessions), and the recovery run's output neither.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres python bench/fleet_fuzz.py --trials 20
    python bench/fleet_fuzz.py --trials 30 --tenants 8 --write
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    REPO_ROOT,
    copy_database,
    cpu_model,
    drop_database,
    git_revision,
    reproduce_command,
    reproduce_lines,
    server_url,
    server_version,
    update_benchmarks,
    with_database,
)
from tenants import build_template, child_env, manage

TITLE = "Fleet crash fuzz"


def prepare(maintenance: str, name: str, tenants: int) -> None:
    """The fleet at the first release, the next release's destructive migration approved."""
    build_template(maintenance, name, tenants)
    url = with_database(maintenance, name)
    env = child_env(url, "governed", "no-op", 2)
    env.update(SHOP_MIGRATIONS="next", DJANGO_SUPERUSER_PASSWORD="pw")
    blocked = subprocess.run(
        [sys.executable, str(REPO_ROOT / "manage.py"), "migrate_schemas", "--shared", "-v", "0"],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if blocked.returncode != 3:
        raise SystemExit(f"expected the gate to hold the release (exit 3): {blocked.stderr}")
    manage(
        url,
        "createsuperuser",
        "--noinput",
        "--username",
        "rev",
        "--email",
        "r@example.com",
        env=env,
    )
    manage(
        url,
        "reviewmigration",
        "shop",
        "0003",
        "--approve",
        "--note",
        "fuzz",
        "--as",
        "rev",
        env=env,
    )


def processes_under(pids: list[int]) -> list[int]:
    """The processes descending from ``pids`` (themselves included), from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    found, pending = [], list(pids)
    while pending:
        pid = pending.pop()
        found.append(pid)
        pending.extend(children.get(pid, []))
    return found


def problems(url: str, tenants: int, *, final: bool) -> list[str]:
    found = []
    with psycopg.connect(url, autocommit=True) as conn:
        for index in range(1, tenants + 1):
            schema = f"tenant_{index:03d}"
            recorded = {
                name: count
                for name, count in conn.execute(
                    f'SELECT name, count(*) FROM "{schema}".django_migrations WHERE app = %s '
                    "GROUP BY name",
                    ["shop"],
                )
            }
            column = conn.execute(
                "SELECT count(*) FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
                "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND "
                "c.relname = 'shop_item' AND a.attname = 'note' AND NOT a.attisdropped",
                [schema],
            ).fetchone()[0]
            index_state = conn.execute(
                "SELECT x.indisvalid FROM pg_class i JOIN pg_index x ON x.indexrelid = i.oid "
                "JOIN pg_namespace n ON n.oid = i.relnamespace WHERE n.nspname = %s AND "
                "i.relname = 'shop_item_price_idx'",
                [schema],
            ).fetchone()
            if recorded.get("0003_remove_item_note") and column:
                found.append(f"{schema}: 0003 recorded, column still there")
            if recorded.get("0004_item_price_idx") and not (index_state and index_state[0]):
                found.append(f"{schema}: 0004 recorded without a valid index")
            if any(count > 1 for count in recorded.values()):
                found.append(f"{schema}: a migration recorded twice")
            if final:
                if column or not (index_state and index_state[0]):
                    found.append(f"{schema}: not on the release after the recovery run")
                for name in ("0003_remove_item_note", "0004_item_price_idx"):
                    if recorded.get(name) != 1:
                        found.append(f"{schema}: {name} not recorded once")
    return found


def trial(maintenance: str, template: str, tenants: int, rng: random.Random) -> dict[str, object]:
    name = f"{template}_t"
    copy_database(maintenance, template, name)
    url = with_database(maintenance, name)
    env = child_env(url, "governed", "no-op", 2)
    env["SHOP_MIGRATIONS"] = "next"
    commands = [
        ["safemigrate_schemas", "--executor=multiprocessing"],
        ["migrate_schemas", "--executor=subprocess", "--parallel", "2"],
    ]
    try:
        pods = [
            subprocess.Popen(
                [sys.executable, str(REPO_ROOT / "manage.py"), *argv],
                env=env,
                cwd=REPO_ROOT,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                stdin=subprocess.DEVNULL,
            )
            for argv in commands
        ]
        time.sleep(rng.uniform(0.5, 4.0))
        victims = [pid for pid in processes_under([p.pid for p in pods])]
        victim = rng.choice(victims) if victims else None
        if victim is not None:
            try:
                os.kill(victim, signal.SIGKILL)
            except ProcessLookupError:
                victim = None
        outputs = [pod.communicate(timeout=600) for pod in pods]
        text = "".join(out + err for out, err in outputs)
        found = problems(url, tenants, final=False)
        if "terminat" in text.lower():
            found.append("a deploy says a session was terminated")
        recovery = subprocess.run(
            [sys.executable, str(REPO_ROOT / "manage.py"), "safemigrate_schemas", "-v", "0"],
            env=env,
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=False,
            timeout=600,
        )
        if recovery.returncode != 0:
            found.append(f"recovery run exited {recovery.returncode}: {recovery.stderr[-500:]}")
        if "terminat" in (recovery.stdout + recovery.stderr).lower():
            found.append("the recovery run says a session was terminated")
        found += problems(url, tenants, final=True)
        return {
            "killed": victim is not None,
            "codes": [pod.returncode for pod in pods],
            "problems": found,
        }
    finally:
        drop_database(maintenance, name)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--tenants", type=int, default=8)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args(argv)
    maintenance = server_url("bench/fleet_fuzz.py")
    seed = args.seed if args.seed is not None else random.randrange(2**31)
    rng = random.Random(seed)
    template = f"fleet_fuzz_{os.getpid()}"
    results = []
    try:
        prepare(maintenance, template, args.tenants)
        for number in range(1, args.trials + 1):
            result = trial(maintenance, template, args.tenants, rng)
            results.append(result)
            print(
                f"trial {number}: killed={result['killed']} exit codes={result['codes']} "
                f"problems={result['problems'] or 'none'}",
                flush=True,
            )
    finally:
        drop_database(maintenance, template)
    killed = sum(1 for r in results if r["killed"])
    failing = [r for r in results if r["problems"]]
    lines = [
        "| trials | processes killed | deploys that exited non-zero | trials with a problem |",
        "|--:|--:|--:|--:|",
        f"| {len(results)} | {killed} | "
        f"{sum(1 for r in results for c in r['codes'] if c != 0)} | {len(failing)} |",
    ]
    print("\n".join(lines))
    if args.write:
        shown = list(argv if argv is not None else sys.argv[1:])
        section = "\n".join(
            [
                f"## {TITLE}",
                "",
                "`bench/fleet_fuzz.py`: each trial starts two deploys of a django-tenants "
                f"fleet ({args.tenants} tenant schemas) at once, `safemigrate_schemas "
                "--executor=multiprocessing` and `migrate_schemas --executor=subprocess "
                "--parallel 2` (governed per schema), to a release with a destructive "
                "migration (approved once) and a `CREATE INDEX CONCURRENTLY`; after a random "
                "0.5 to 4 s one of their processes (a deploy, a pool worker or a per-schema "
                "child) is killed with SIGKILL. Then the schemas are checked (nothing "
                "recorded that is not applied, nothing recorded twice, no session "
                "terminated), one more `safemigrate_schemas` must finish the fleet (exit 0), "
                "and every schema must be on the release.",
                "",
                f"- Date: {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC",
                f"- Machine: {cpu_model()}, {os.cpu_count()} cores, {platform.system()} "
                f"{platform.release()}; Python {platform.python_version()}, PostgreSQL "
                f"{server_version(maintenance)}",
                f"- Code: {git_revision(('django_safemigrate', 'bench', 'tests/tenants_site'))}",
                "",
                *lines,
                "",
                *reproduce_lines(
                    reproduce_command("bench/fleet_fuzz.py", [*shown, "--seed", str(seed)], None)
                ),
                "",
            ]
        )
        update_benchmarks(REPO_ROOT / "BENCHMARKS.md", TITLE, section)
    if failing:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
