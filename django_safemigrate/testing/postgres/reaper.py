"""Throwaway embedded servers never outlive the process that started them."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from pathlib import Path

from django_safemigrate.testing.postgres.common import _pid_alive
from django_safemigrate.testing.postgres.server import EmbeddedPostgres


def _spawn_reaper(server: EmbeddedPostgres) -> None:
    """Start a detached watcher that destroys ``server`` once this process is gone.

    atexit handlers do not run when a process is killed or leaves through ``os._exit`` (mypy
    does, and imports these settings through the django-stubs plugin), and a throwaway server
    must not outlive its owner.
    """
    package_root = str(Path(__file__).resolve().parents[3])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
    module = "django_safemigrate.testing.postgres"
    subprocess.Popen(
        [sys.executable, "-m", module, "_reap", str(os.getpid()), str(server.pgdata)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        cwd="/",
        start_new_session=True,  # outlives a Ctrl-C aimed at the test run's process group
    )


def _reap(owner_pid: int, data_dir: str) -> None:
    """Wait for ``owner_pid`` to end, then destroy the throwaway cluster in ``data_dir``."""
    try:
        pidfd = os.pidfd_open(owner_pid)
    except ProcessLookupError:
        pass
    except (OSError, AttributeError):  # no pidfd (old kernel, not Linux): poll
        while _pid_alive(owner_pid):
            time.sleep(0.5)
    else:
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        poller.poll()
        os.close(pidfd)
    EmbeddedPostgres(data_dir, durable=False).destroy()


def _destroy_at_exit(server: EmbeddedPostgres, owner_pid: int) -> None:
    if os.getpid() == owner_pid:
        try:
            server.destroy()
        except Exception as exc:  # at exit there is nobody left to raise to
            print(f"django_safemigrate: could not remove {server.pgdata}: {exc}", file=sys.stderr)
