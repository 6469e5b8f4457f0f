"""A small crash fuzz in every test run; ``bench/crash_fuzz.py`` runs the full one."""

from __future__ import annotations

import pytest

from tests.crash_fuzz import run_fuzz, run_online_fuzz

pytestmark = pytest.mark.once


def test_random_kills_and_terminations_never_leave_a_half_applied_database(tmp_path):
    report = run_fuzz(tmp_path, kills=8, terminations=3, per_round=6, seed=20261125)
    assert report.failures == []
    assert report.kills == 8
    assert report.terminations == 3


def test_random_kills_and_terminations_inside_the_online_forms_end_as_a_clean_run(tmp_path):
    """Each round starts with the table created and filled, so the later migrations run
    in their online forms; after the interruptions and a last run, schema, rows and ledger
    equal an uninterrupted run's and nothing temporary is left."""
    report = run_online_fuzz(tmp_path, kills=6, terminations=3, per_round=2, seed=20261126)
    assert report.failures == []
    assert report.kills == 6
    assert report.terminations == 3
    # The interruptions stopped the online sequences part-way, not only before them.
    assert any(not where.startswith("0003") for where in report.stopped_at), report.stopped_at
