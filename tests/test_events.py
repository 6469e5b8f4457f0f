"""Structured events of real runs, read as a log collector reads them (JSON lines written
through ``django_safemigrate.logging.JSONFormatter`` by a ``LOGGING`` handler), and the
``lock_wait_alert`` signal, in real processes against a real PostgreSQL."""

from __future__ import annotations

import json
import logging
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from django_safemigrate.conf import InvalidSettings, SettingsProblem, parse_settings
from django_safemigrate.execution.lock import lock_key
from django_safemigrate.logging import JSONFormatter
from tests.helpers import (
    command_env,
    connect,
    copy_scenario,
    fresh_database,
    lock_holder_pid,
    query,
    run_command,
    start_command,
    wait_for,
)

# Structured events of real runs: the same on every Django version,
# so CI runs them in its first pass only.
pytestmark = pytest.mark.once


@pytest.fixture
def database() -> Iterator[str]:
    with fresh_database("sm_events") as name:
        yield name


@pytest.fixture
def project(tmp_path: Path) -> Path:
    for app in ("firstdeploy", "failing", "lockalert"):
        copy_scenario(app, tmp_path)
    return tmp_path


def _env(
    database: str, project: Path, apps: list[str], settings: Any = None, **extra: str
) -> dict[str, str]:
    return command_env(database, apps=apps, pythonpath=[project], settings=settings, extra=extra)


def events(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def names(found: list[dict[str, Any]]) -> list[str]:
    return [e["event"] for e in found]


def _finish(proc: subprocess.Popen[str], expect: int = 0) -> tuple[str, str]:
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == expect, f"exit {proc.returncode}\n{out}\n{err}"
    return out, err


def test_a_run_logs_its_events_as_json_lines(database: str, project: Path) -> None:
    log = project / "events.jsonl"
    run_command(
        ["safemigrate"],
        _env(database, project, ["firstdeploy"], SCENARIO_EVENTS_FILE=str(log)),
        expect=0,
    )
    found = events(log)
    sequence = names(found)
    assert sequence[:2] == ["run.start", "lock.taken"]
    assert sequence[-1] == "run.end"
    middle = sequence[2:-1]
    # Every step of every migration: started, then ended, one after the other.
    assert middle
    assert middle == ["step.start", "step.end"] * (len(middle) // 2)
    assert {e["logger"] for e in found} == {"django_safemigrate.events"}
    assert all(set(e) >= {"time", "level", "message", "command", "database", "host", "pid"}
               for e in found)  # fmt: skip
    run_id = query(database, "SELECT id FROM django_safemigrate_run")[0][0]
    assert found[-1]["run_id"] == run_id
    assert found[-1]["outcome"] == "applied"
    assert found[-1]["exit_code"] == 0
    assert found[-1]["level"] == "INFO"
    assert found[-1]["duration"] >= 0
    assert found[0]["command"] == "safemigrate"
    assert found[0]["lock_wait"] == 600
    assert found[1]["waited"] >= 0
    assert isinstance(found[1]["backend_pid"], int)
    migrated = [e["migration"] for e in found if e["event"] == "step.end"]
    assert migrated[-4:] == [
        "firstdeploy.0001_initial",
        "firstdeploy.0002_pause",
        "firstdeploy.0003_item_code",
        "firstdeploy.0004_remove_item_legacy",
    ]
    last = "firstdeploy.0004_remove_item_legacy"
    start = next(e for e in found if e["event"] == "step.start" and e["migration"] == last)
    assert start["lock_mode"] == "ACCESS EXCLUSIVE"
    assert start["lock_timeout"] == 0.1
    assert start["step"] == 1
    assert start["step_count"] == 1
    end = next(e for e in found if e["event"] == "step.end" and e["migration"] == last)
    assert end["outcome"] == "done"
    assert end["attempts"] == 1
    assert end["duration"] >= 0


def test_plain_migrate_logs_its_run_and_lock(database: str, project: Path) -> None:
    log = project / "events.jsonl"
    result = run_command(
        ["migrate"],
        _env(database, project, ["firstdeploy"], SCENARIO_EVENTS_FILE=str(log)),
        expect=0,
    )
    found = events(log)
    # A first deploy: Django applies each migration itself, so no step events.
    assert names(found) == ["run.start", "lock.taken", "run.end"]
    assert {e["command"] for e in found} == {"migrate"}
    assert found[-1]["outcome"] == "applied"
    assert "run.end" not in result.err


def test_a_blocked_run_says_which_migrations_need_review(database: str, project: Path) -> None:
    env = _env(database, project, ["firstdeploy"])
    run_command(["safemigrate", "firstdeploy", "0002"], env, expect=0)
    log = project / "events.jsonl"
    run_command(["safemigrate"], {**env, "SCENARIO_EVENTS_FILE": str(log)}, expect=3)
    found = events(log)
    assert names(found) == ["run.start", "lock.taken", "run.blocked", "run.end"]
    blocked = found[2]
    assert blocked["level"] == "WARNING"
    assert [m["migration"] for m in blocked["migrations"]] == [
        "firstdeploy.0004_remove_item_legacy"
    ]
    assert blocked["migrations"][0]["review"] == "pending"
    assert "needs a review" in " ".join(blocked["migrations"][0]["reasons"])
    assert found[-1]["outcome"] == "blocked"
    assert found[-1]["exit_code"] == 3
    assert found[-1]["level"] == "WARNING"


def test_a_failed_step_and_run_are_warnings_with_the_error(database: str, project: Path) -> None:
    log = project / "events.jsonl"
    run_command(
        ["safemigrate"],
        _env(database, project, ["failing"], SCENARIO_EVENTS_FILE=str(log)),
        expect=1,
    )
    found = events(log)
    assert names(found)[-3:] == ["step.failed", "run.failed", "run.end"]
    step = found[-3]
    assert step["migration"] == "failing.0002_fails_half_way"
    assert step["level"] == "WARNING"
    assert "division by zero" in step["error"]
    assert "division by zero" in found[-2]["error"]
    assert found[-2]["exit_code"] == 1
    assert found[-1]["outcome"] == "failed"
    assert found[-1]["level"] == "WARNING"
    # The step that failed was started and never ended.
    ended = [e["migration"] for e in found if e["event"] == "step.end"]
    assert step["migration"] not in ended


def _hold_with_a_paused_run(database: str, project: Path) -> subprocess.Popen[str]:
    """A real ``safemigrate`` holding the lock, paused inside ``firstdeploy.0002_pause``."""
    pause = project / "pause"
    pause.touch()
    proc = start_command(
        ["safemigrate"], _env(database, project, ["firstdeploy"], SCENARIO_PAUSE_FILE=str(pause))
    )
    wait_for(lambda: Path(f"{pause}.reached").exists() or proc.poll() is not None, 120)
    assert proc.poll() is None, proc.communicate()
    return proc


def test_a_waiting_run_names_the_holder_then_takes_the_lock(database: str, project: Path) -> None:
    holder = _hold_with_a_paused_run(database, project)
    log = project / "waiter.jsonl"
    waiter = start_command(
        ["safemigrate"],
        _env(database, project, ["firstdeploy"], SCENARIO_EVENTS_FILE=str(log)),
    )
    try:
        wait_for(lambda: "lock.wait" in names(events(log)), 60)
        backend = lock_holder_pid(database)
    finally:
        (project / "pause").unlink()
    _finish(holder)
    _finish(waiter)
    found = events(log)
    sequence = names(found)
    assert sequence[0] == "run.start"
    assert sequence[1] == "lock.wait"
    assert sequence.index("lock.taken") > 1
    assert sequence[-1] == "run.end"
    assert "lock.wait_alert" not in sequence  # the default threshold is 30 s
    wait = found[1]
    assert wait["holder"]["pid"] == holder.pid
    assert wait["holder"]["backend_pid"] == backend
    assert wait["holder"]["application_name"].startswith("django_safemigrate lock ")
    assert wait["holder"]["command"] == "manage.py safemigrate"
    assert wait["holder"]["since"] is not None
    # The statement the holder's runner session runs (or ran last), from pg_stat_activity.
    assert wait["holder"]["query"]
    taken = found[sequence.index("lock.taken")]
    assert taken["waited"] >= wait["waited"]
    assert found[-1]["outcome"] == "nothing_to_do"


def _hold_lock(database: str) -> Any:
    """The migration lock of ``database``, held by a plain session of this test."""
    conn = connect(database)
    key = lock_key(database, "public")
    assert conn.execute("SELECT pg_try_advisory_lock(%s)", [key]).fetchone() == (True,)
    return conn


@pytest.mark.parametrize(("threshold", "alerts"), [(0.3, 1), (60, 0), (None, 0)])
def test_the_alert_is_sent_once_past_the_threshold(
    database: str, project: Path, threshold: float | None, alerts: int
) -> None:
    log, sent = project / "events.jsonl", project / "alerts.jsonl"
    env = _env(
        database,
        project,
        ["lockalert"],
        {"LOCK_WAIT_ALERT": threshold, "LOCK_POLL_INTERVAL": 0.05},
        SCENARIO_EVENTS_FILE=str(log),
        SCENARIO_ALERT_FILE=str(sent),
    )
    holder = _hold_lock(database)
    backend = holder.info.backend_pid
    waiter = start_command(["safemigrate"], env)
    try:
        if alerts:
            wait_for(sent.exists, 60)
            # Keep it waiting well past the threshold (some twenty more polls): still one
            # alert for this one wait.
            time.sleep(1.0)
        else:
            wait_for(lambda: "lock.wait" in names(events(log)), 60)
    finally:
        holder.close()
    _finish(waiter)
    found = events(log)
    received = events(sent)
    assert len(received) == alerts
    assert names(found).count("lock.wait_alert") == alerts
    if alerts:
        (signal,) = received
        assert signal["sender"] == "Command"
        assert signal["threshold"] == threshold
        assert signal["waited"] >= threshold
        assert signal["holder"]["backend_pid"] == backend
        assert signal["command"] == "safemigrate"
        assert signal["database"] == "default"
        alert = next(e for e in found if e["event"] == "lock.wait_alert")
        assert alert["level"] == "WARNING"
        assert alert["holder"]["backend_pid"] == backend
        assert alert["threshold"] == threshold
    sequence = names(found)
    assert sequence[:2] == ["run.start", "lock.wait"]
    assert sequence[-1] == "run.end"
    assert sequence.index("lock.taken") > max(
        i for i, name in enumerate(sequence) if name.startswith("lock.wait")
    )


def test_a_failing_alert_receiver_does_not_stop_the_run(database: str, project: Path) -> None:
    log, sent = project / "events.jsonl", project / "alerts.jsonl"
    env = _env(
        database,
        project,
        ["lockalert"],
        {"LOCK_WAIT_ALERT": 0.1, "LOCK_POLL_INTERVAL": 0.05},
        SCENARIO_EVENTS_FILE=str(log),
        SCENARIO_ALERT_FILE=str(sent),
        SCENARIO_ALERT_RAISE="1",
    )
    holder = _hold_lock(database)
    waiter = start_command(["safemigrate"], env)
    try:
        wait_for(sent.exists, 60)
    finally:
        holder.close()
    _finish(waiter)
    found = events(log)
    failed = [e for e in found if "exception" in e]
    assert len(failed) == 1
    assert "the pager cannot be reached" in failed[0]["message"]
    assert "ConnectionError" in failed[0]["exception"]
    assert found[-1]["event"] == "run.end"
    assert found[-1]["exit_code"] == 0


@pytest.mark.parametrize("value", [-1, "30", True, float("nan"), 100_000])
def test_a_bad_alert_threshold_is_e035(value: Any) -> None:
    with pytest.raises(InvalidSettings) as info:
        parse_settings({"LOCK_WAIT_ALERT": value}, {"default": {}})
    (problem,) = info.value.problems
    assert isinstance(problem, SettingsProblem)
    assert problem.check_id == "safemigrate.E035"
    assert "LOCK_WAIT_ALERT" in problem.message


def test_zero_and_none_switch_the_alert_off() -> None:
    for value in (0, None):
        assert parse_settings({"LOCK_WAIT_ALERT": value}, {}).lock_wait_alert is None
    assert parse_settings({}, {}).lock_wait_alert == 30
    assert parse_settings({"LOCK_WAIT_ALERT": 5}, {}).lock_wait_alert == 5


def test_the_formatter_writes_one_json_object_a_line() -> None:
    record = logging.LogRecord("django_safemigrate.events", logging.WARNING, __file__, 1,
                               "lost %s", ("it",), None)  # fmt: skip
    record.event = "lock.lost"
    record.safemigrate = {"run_id": 3, "message": "not this", "since": object()}
    line = JSONFormatter().format(record)
    assert "\n" not in line
    data = json.loads(line)
    assert list(data)[:5] == ["time", "level", "logger", "event", "message"]
    assert data["event"] == "lock.lost"
    assert data["message"] == "lost it"
    assert data["level"] == "WARNING"
    assert data["run_id"] == 3
    assert data["time"].endswith("+00:00")
    plain = json.loads(JSONFormatter().format(logging.LogRecord("x", 20, "", 1, "hi", (), None)))
    assert plain["event"] is None
    assert plain["message"] == "hi"


def test_retries_of_a_step_are_events(database: str, project: Path) -> None:
    copy_scenario("lockretries", project)
    settings = {"LOCK_RETRIES": [[0.1, 0.05], [0.1, 0.05], [0.2, 0]]}
    env = _env(database, project, ["lockretries"], settings)
    run_command(["safemigrate", "lockretries", "0001"], env, expect=0)
    log = project / "events.jsonl"
    # An open transaction that read the table keeps the ALTER TABLE from its lock.
    with connect(database) as holder:
        holder.execute("BEGIN")
        holder.execute("SELECT count(*) FROM lockretries_item")
        run_command(
            ["safemigrate", "lockretries", "0002"],
            {**env, "SCENARIO_EVENTS_FILE": str(log)},
            expect=1,
        )
    found = events(log)
    assert names(found)[-6:] == [
        "step.start", "step.retry", "step.retry", "step.failed", "run.failed", "run.end",
    ]  # fmt: skip
    first, second = found[-5], found[-4]
    assert first["migration"] == "lockretries.0002_item_sku"
    assert (first["attempt"], first["attempts"], first["reason"]) == (1, 3, "lock timeout")
    assert (first["backoff"], first["next_lock_timeout"]) == (0.05, 0.1)
    assert (second["attempt"], second["backoff"], second["next_lock_timeout"]) == (2, 0.05, 0.2)
    assert found[-3]["attempts"] == 3
    assert "lock timeout" in found[-3]["error"]
