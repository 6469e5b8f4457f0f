"""Shared pytest configuration for django-safemigrate's tests."""

from __future__ import annotations

import pytest


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
