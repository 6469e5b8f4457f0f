"""A small crash fuzz in every test run; ``bench/crash_fuzz.py`` runs the full one."""

from __future__ import annotations

from tests.crash_fuzz import run_fuzz


def test_random_kills_and_terminations_never_leave_a_half_applied_database(tmp_path):
    report = run_fuzz(tmp_path, kills=8, terminations=3, per_round=6, seed=20261125)
    assert report.failures == []
    assert report.kills == 8
    assert report.terminations == 3
