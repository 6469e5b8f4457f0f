"""Shared pytest configuration for django-safemigrate's tests."""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest

_CACHE_HOMES: list[str] = []


def pytest_configure(config: pytest.Config) -> None:
    """The commands the tests start keep their checksum cache in a directory of this run
    (removed afterwards), not in the user's ``~/.cache``."""
    _CACHE_HOMES.append(tempfile.mkdtemp(prefix="sm-tests-cache-"))
    os.environ["XDG_CACHE_HOME"] = _CACHE_HOMES[-1]


def pytest_unconfigure(config: pytest.Config) -> None:
    while _CACHE_HOMES:
        shutil.rmtree(_CACHE_HOMES.pop(), ignore_errors=True)


def pytest_sessionstart(session: pytest.Session) -> None:
    """Show that an embedded PostgreSQL was started for this run, and how to stop it.

    The test settings start it while pytest is already capturing output, so the line
    ``django_safemigrate.testing.postgres`` wrote to stderr would never be seen.
    """
    from django_safemigrate.testing.postgres import announcements

    config = session.config
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None or config.getoption("capture") == "no":  # -s: stderr showed it
        return
    for line in announcements():
        reporter.write_line(line)
