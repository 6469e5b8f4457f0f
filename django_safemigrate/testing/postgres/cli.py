"""``python -m django_safemigrate.testing.postgres start|stop|status``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from django_safemigrate.testing.postgres.common import EXAMPLE_DATABASE, NoPostgreSQL
from django_safemigrate.testing.postgres.database_url import stop_embedded
from django_safemigrate.testing.postgres.reaper import _reap
from django_safemigrate.testing.postgres.runtime import (
    _example_data_dir,
    default_example_data_dir,
)
from django_safemigrate.testing.postgres.server import EmbeddedPostgres


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m django_safemigrate.testing.postgres",
        description="Manage the example site's persistent embedded PostgreSQL.",
    )
    if argv is None:
        argv = sys.argv[1:]
    if len(argv) == 3 and argv[0] == "_reap":  # internal: see _spawn_reaper()
        _reap(int(argv[1]), argv[2])
        return 0
    parser.add_argument("command", choices=["start", "stop", "status"])
    parser.add_argument(
        "--data-dir",
        help="cluster directory (default: $SAFEMIGRATE_EMBEDDED_PGDATA, "
        f"else {default_example_data_dir()})",
    )
    args = parser.parse_args(argv)
    server = EmbeddedPostgres(args.data_dir or _example_data_dir())
    try:
        if args.command == "start":
            server.start()
            server.ensure_database(EXAMPLE_DATABASE)
            print(server.url(EXAMPLE_DATABASE))
        elif args.command == "stop":
            print("stopped" if stop_embedded(server.data_dir) else "not running")
        else:
            print(f"running, pid {server.pid}: {server.url(EXAMPLE_DATABASE)}"
                  if server.running else "not running")  # fmt: skip
            print(f"data: {server.pgdata}")
    except NoPostgreSQL as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0
