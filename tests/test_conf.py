"""The settings object and its system checks."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from django_safemigrate.conf import (
    InvalidSettings,
    SafemigrateSettings,
    get_settings,
    parse_settings,
)
from django_safemigrate.enums import ChecksumPolicy, DriftPolicy, OnBlocked, RequestedPhase, Risk

ALIASES = {"default": {}, "direct": {}}


def test_defaults():
    assert parse_settings(None, ALIASES) == SafemigrateSettings(configured=False)
    assert parse_settings({}, ALIASES) == SafemigrateSettings()
    assert SafemigrateSettings().review is Risk.DESTRUCTIVE
    assert SafemigrateSettings().default_phase is RequestedPhase.ALL
    assert SafemigrateSettings().govern_fresh_database is False
    assert SafemigrateSettings().lock_wait == 600
    assert SafemigrateSettings().checksum_mismatch is ChecksumPolicy.ERROR


def test_values_are_parsed():
    parsed = parse_settings(
        {
            "LOCK_WAIT": 0,
            "LOCK_POLL_INTERVAL": 0.1,
            "LOCK_DATABASE": "direct",
            "CHECKSUM_MISMATCH": "warn",
        },
        ALIASES,
    )
    assert parsed == SafemigrateSettings(
        lock_wait=0.0,
        lock_poll_interval=0.1,
        lock_database="direct",
        checksum_mismatch=ChecksumPolicy.WARN,
    )


@pytest.mark.parametrize("mode", ["strict", "nonstrict", "disabled", "STRICT"])
def test_older_package_modes_are_accepted(mode):
    assert parse_settings(mode, ALIASES).legacy_mode == mode.lower()


@pytest.mark.parametrize(
    ("raw", "check_id"),
    [
        ("loose", "safemigrate.E001"),
        (["LOCK_WAIT"], "safemigrate.E001"),
        ({"LOCK_WAIT": "10"}, "safemigrate.E002"),
        ({"LOCK_WAIT": True}, "safemigrate.E002"),
        ({"LOCK_WAIT": -0.5}, "safemigrate.E003"),
        ({"LOCK_POLL_INTERVAL": 0}, "safemigrate.E003"),
        ({"LOCKWAIT": 1}, "safemigrate.E004"),
        ({"LOCK_DATABASE": "replica"}, "safemigrate.E005"),
        ({"CHECKSUM_MISMATCH": "ignore"}, "safemigrate.E006"),
    ],
)
def test_invalid_values_name_their_check(raw, check_id):
    with pytest.raises(InvalidSettings) as info:
        parse_settings(raw, ALIASES)
    assert [p.check_id for p in info.value.problems] == [check_id]
    assert info.value.problems[0].hint


def test_every_problem_is_reported_at_once():
    with pytest.raises(InvalidSettings) as info:
        parse_settings({"LOCK_WAIT": "x", "NOPE": 1, "CHECKSUM_MISMATCH": 3}, ALIASES)
    assert sorted(p.check_id for p in info.value.problems) == [
        "safemigrate.E002",
        "safemigrate.E004",
        "safemigrate.E006",
    ]


def test_cache_follows_setting_changes():
    assert get_settings().lock_wait == 600
    with override_settings(SAFEMIGRATE={"LOCK_WAIT": 5}):
        assert get_settings().lock_wait == 5
    assert get_settings().lock_wait == 600


def test_system_check_reports_invalid_settings():
    with (
        override_settings(SAFEMIGRATE={"LOCK_WAIT": "later"}),
        pytest.raises(SystemCheckError) as info,
    ):
        call_command("check")
    assert "safemigrate.E002" in str(info.value)


def test_system_check_is_quiet_for_valid_settings():
    with override_settings(SAFEMIGRATE={"LOCK_WAIT": 5}):
        call_command("check")


@pytest.mark.parametrize(
    ("key", "value", "check_id"),
    [
        ("REVIEW", "sometimes", "safemigrate.E015"),
        ("DEFAULT_PHASE", "before", "safemigrate.E016"),
        ("ON_BLOCKED", "ignore", "safemigrate.E017"),
        ("INFER_PHASE", "yes", "safemigrate.E018"),
        ("GOVERN_FRESH_DATABASE", 1, "safemigrate.E018"),
        ("LINEAR_APPLY", "no", "safemigrate.E018"),
    ],
)
def test_governance_settings_are_validated(key, value, check_id):
    with pytest.raises(InvalidSettings) as caught:
        parse_settings({key: value}, ALIASES)
    (problem,) = caught.value.problems
    assert problem.check_id == check_id
    assert key in problem.message


def test_governance_settings_are_parsed():
    parsed = parse_settings(
        {
            "REVIEW": "risky",
            "DEFAULT_PHASE": "pre",
            "ON_BLOCKED": "apply_unblocked",
            "INFER_PHASE": False,
            "GOVERN_FRESH_DATABASE": True,
        },
        ALIASES,
    )
    assert parsed.review is Risk.RISKY
    assert parsed.default_phase is RequestedPhase.PRE
    assert parsed.on_blocked is OnBlocked.APPLY_UNBLOCKED
    assert parsed.infer_phase is False
    assert parsed.govern_fresh_database is True
    assert parse_settings({"REVIEW": "never"}, ALIASES).review is None


@pytest.mark.parametrize(
    ("mode", "on_blocked", "govern"),
    [
        ("strict", OnBlocked.STOP, True),
        ("nonstrict", OnBlocked.APPLY_UNBLOCKED, True),
        ("disabled", OnBlocked.STOP, False),
    ],
)
def test_the_older_package_modes(mode, on_blocked, govern):
    parsed = parse_settings(mode.upper(), ALIASES)
    assert parsed.default_phase is RequestedPhase.PRE
    assert parsed.review is None
    assert parsed.infer_phase is False
    assert parsed.on_blocked is on_blocked
    assert parsed.govern is govern


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("LOCK_TIMEOUT", float("nan")),
        ("LOCK_TIMEOUT", float("inf")),
        ("LOCK_TIMEOUT", 3_601),
        # Sent in whole milliseconds: 0.4 ms would become 0, "no limit".
        ("LOCK_TIMEOUT", 0.0004),
        ("STATEMENT_TIMEOUT", float("-inf")),
        ("STATEMENT_TIMEOUT", 86_401),
        ("LOCK_WAIT", float("nan")),
        ("LOCK_WAIT", 1e12),
        ("LOCK_POLL_INTERVAL", float("inf")),
        ("RETRY_BACKOFF", float("nan")),
        ("RETRY_BACKOFF_MAX", 1e9),
        ("PREFLIGHT_MIN_AGE", float("inf")),
        ("PREFLIGHT_WAIT", float("nan")),
    ],
)
def test_durations_must_be_finite_and_bounded(key, value):
    with pytest.raises(InvalidSettings) as caught:
        parse_settings({key: value}, ALIASES)
    (problem,) = caught.value.problems
    assert problem.check_id == "safemigrate.E003"
    assert "must be a finite number of seconds" in problem.message
    with override_settings(SAFEMIGRATE={key: value}), pytest.raises(SystemCheckError) as info:
        call_command("check")
    assert "safemigrate.E003" in str(info.value)


@pytest.mark.parametrize("value", [101, 10**9, -1])
def test_retries_are_bounded(value):
    with pytest.raises(InvalidSettings) as caught:
        parse_settings({"RETRIES": value}, ALIASES)
    assert [p.check_id for p in caught.value.problems] == ["safemigrate.E013"]


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("LOCK_TIMEOUT", 0),
        ("LOCK_TIMEOUT", 0.001),
        ("LOCK_TIMEOUT", 3_600),
        ("STATEMENT_TIMEOUT", 86_400),
        ("LOCK_WAIT", 0),
        ("LOCK_WAIT", 86_400),
        ("RETRY_BACKOFF_MAX", 3_600),
    ],
)
def test_durations_at_their_bounds_are_accepted(key, value):
    assert parse_settings({key: value}, ALIASES) is not None


@pytest.mark.parametrize("value", ["allow", "reject_only", "off"])
def test_command_line_reviews_is_parsed(value):
    parsed = parse_settings({"COMMAND_LINE_REVIEWS": value}, ALIASES)
    assert parsed.command_line_reviews.value == value
    assert parse_settings({}, ALIASES).command_line_reviews.value == "allow"


@pytest.mark.parametrize("value", ["admin", True, None])
def test_command_line_reviews_is_validated(value):
    with pytest.raises(InvalidSettings) as caught:
        parse_settings({"COMMAND_LINE_REVIEWS": value}, ALIASES)
    (problem,) = caught.value.problems
    assert problem.check_id == "safemigrate.E019"


@pytest.mark.parametrize("mode", ["strict", "nonstrict", "disabled"])
def test_the_older_package_modes_are_a_system_check_warning(mode):
    from django_safemigrate.checks import check_settings

    with override_settings(SAFEMIGRATE=mode):
        (warning,) = check_settings()
    assert warning.id == "safemigrate.W003"
    assert warning.level == 30  # a warning: the project runs, deliberately
    assert f"SAFEMIGRATE = {mode!r} selects the older django-safemigrate package's mode" in (
        warning.msg
    )
    assert "reviews: destructive migrations are applied by safemigrate without an approval" in (
        warning.msg
    )
    assert ("the phase gate" in warning.msg) is (mode == "disabled")
    assert "To get governance back, replace the string with a dict" in warning.hint
    with override_settings(SAFEMIGRATE={"REVIEW": "destructive"}):
        assert check_settings() == []


@pytest.mark.parametrize(
    ("key", "value", "check_id"),
    [
        ("DRIFT", "loud", "safemigrate.E025"),
        ("DRIFT", True, "safemigrate.E025"),
        ("DRIFT_IGNORE", "shop_*", "safemigrate.E026"),
        ("DRIFT_IGNORE", ["shop_*", ""], "safemigrate.E026"),
        ("DRIFT_IGNORE", [3], "safemigrate.E026"),
    ],
)
def test_drift_settings_are_validated(key, value, check_id):
    with pytest.raises(InvalidSettings) as caught:
        parse_settings({key: value}, ALIASES)
    (problem,) = caught.value.problems
    assert problem.check_id == check_id
    assert problem.hint


def test_backup_and_archive_defaults():
    settings = parse_settings({}, ALIASES)
    assert settings.backup_check == "off"
    assert settings.backup_max_age == 86_400
    assert settings.backup_callable is None
    assert settings.archive is False
    assert settings.archive_schema == "safemigrate_archive"
    parsed = parse_settings(
        {
            "BACKUP_CHECK": "stop",
            "BACKUP_MAX_AGE": 3600,
            "BACKUP_CALLABLE": "django.utils.timezone.now",
            "ARCHIVE": True,
            "ARCHIVE_SCHEMA": "kept_data",
        },
        ALIASES,
    )
    assert (parsed.backup_check, parsed.backup_max_age, parsed.backup_callable) == (
        "stop",
        3600.0,
        "django.utils.timezone.now",
    )
    assert (parsed.archive, parsed.archive_schema) == (True, "kept_data")


@pytest.mark.parametrize(
    ("key", "value", "check_id"),
    [
        ("BACKUP_CHECK", "always", "safemigrate.E030"),
        ("BACKUP_CHECK", None, "safemigrate.E030"),
        ("BACKUP_MAX_AGE", 0, "safemigrate.E031"),
        ("BACKUP_MAX_AGE", -5, "safemigrate.E031"),
        ("BACKUP_MAX_AGE", float("inf"), "safemigrate.E031"),
        ("BACKUP_MAX_AGE", True, "safemigrate.E031"),
        ("BACKUP_MAX_AGE", "1 day", "safemigrate.E031"),
        ("BACKUP_CALLABLE", "nobackups", "safemigrate.E031"),
        ("BACKUP_CALLABLE", "no_such_module.last_backup", "safemigrate.E031"),
        ("BACKUP_CALLABLE", "django.utils.timezone.no_such_function", "safemigrate.E031"),
        ("BACKUP_CALLABLE", "django.utils.timezone.utc", "safemigrate.E031"),
        ("ARCHIVE", "yes", "safemigrate.E032"),
        ("ARCHIVE", 1, "safemigrate.E032"),
        ("ARCHIVE_SCHEMA", "public", "safemigrate.E033"),
        ("ARCHIVE_SCHEMA", "pg_archive", "safemigrate.E033"),
        ("ARCHIVE_SCHEMA", "Archive", "safemigrate.E033"),
        ("ARCHIVE_SCHEMA", "a" * 64, "safemigrate.E033"),
        ("ARCHIVE_SCHEMA", "", "safemigrate.E033"),
        ("ARCHIVE_SCHEMA", None, "safemigrate.E033"),
    ],
)
def test_bad_backup_and_archive_values(key, value, check_id):
    with pytest.raises(InvalidSettings) as caught:
        parse_settings({key: value}, ALIASES)
    (problem,) = caught.value.problems
    assert problem.check_id == check_id
    assert f"SAFEMIGRATE['{key}']" in problem.message


def test_drift_settings_are_parsed():
    parsed = parse_settings({"DRIFT": "stop", "DRIFT_IGNORE": ["b_*", "a_idx"]}, ALIASES)
    assert parsed.drift is DriftPolicy.STOP
    assert parsed.drift_ignore == ("a_idx", "b_*")
    assert SafemigrateSettings().drift is DriftPolicy.OFF
    assert SafemigrateSettings().drift_ignore == ()


def test_system_check_reports_bad_drift_settings():
    with (
        override_settings(SAFEMIGRATE={"DRIFT": "sometimes", "DRIFT_IGNORE": "x"}),
        pytest.raises(SystemCheckError) as info,
    ):
        call_command("check")
    assert "safemigrate.E025" in str(info.value)
    assert "safemigrate.E026" in str(info.value)
