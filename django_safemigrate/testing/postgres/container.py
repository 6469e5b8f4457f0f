"""A throwaway PostgreSQL container through testcontainers, when a Docker daemon answers."""

from __future__ import annotations

import atexit
import contextlib
import os
import socket
import time
from typing import Any


def docker_available(timeout: float = 1.0) -> bool:
    """Whether a Docker daemon answers ``GET /_ping`` within ``timeout`` seconds.

    Talks to ``DOCKER_HOST`` (``unix://`` or plain ``tcp://``) or ``/var/run/docker.sock``.
    A docker client binary on PATH proves nothing, so it is not looked at.
    """
    host = os.environ.get("DOCKER_HOST", "").strip() or "unix:///var/run/docker.sock"
    deadline = time.monotonic() + timeout
    try:
        if host.startswith("unix://"):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            try:
                sock.connect(host.removeprefix("unix://"))
            except OSError:
                sock.close()
                raise
        elif host.startswith("tcp://"):
            address = host.removeprefix("tcp://").split("/", 1)[0]
            name, _, port = address.rpartition(":")
            sock = socket.create_connection((name.strip("[]"), int(port)), timeout=timeout)
        else:
            return False
        with sock:
            sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            data = b""
            while len(data) < 65536:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                sock.settimeout(remaining)
                chunk = sock.recv(4096)
                if not chunk:
                    break
                data += chunk
    except (OSError, ValueError):
        return False
    head, _, body = data.partition(b"\r\n\r\n")
    status = head.split(b"\r\n", 1)[0].split()
    return len(status) >= 2 and status[1] == b"200" and body.strip() == b"OK"


def _start_container() -> str:  # pragma: no cover - needs a Docker daemon
    try:
        from testcontainers.community.postgres import PostgresContainer
    except ImportError:
        from testcontainers.postgres import PostgresContainer
    image = os.environ.get("SAFEMIGRATE_POSTGRES_IMAGE", "postgres:17-alpine")
    container = PostgresContainer(
        image, username="postgres", password="postgres", dbname="postgres", driver=None
    )
    container.start()
    atexit.register(_stop_container_at_exit, container, os.getpid())
    host = container.get_container_host_ip()
    port = container.get_exposed_port(5432)
    return f"postgres://postgres:postgres@{host}:{port}/postgres"


def _stop_container_at_exit(container: Any, owner_pid: int) -> None:  # pragma: no cover
    if os.getpid() == owner_pid:  # not in a forked child that happens to run atexit
        with contextlib.suppress(Exception):
            container.stop()
