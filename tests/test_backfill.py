"""The batched backfill: exact values, resumable after a kill, reversible."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from tests.helpers import (
    applied,
    command_env,
    copy_scenario,
    fresh_database,
    query,
    run_command,
    start_command,
    wait_for,
)

WRONG = (
    "SELECT count(*) FROM backfill_customer WHERE email_normalized IS DISTINCT FROM lower(email)"
)


@pytest.fixture
def env(tmp_path: Path):
    copy_scenario("backfill", tmp_path)
    with fresh_database() as database:
        yield (
            database,
            command_env(
                database,
                apps=["backfill"],
                pythonpath=[tmp_path],
                extra={"BACKFILL_THROTTLE": "0.05"},
            ),
        )


def test_backfill_fills_every_row_in_batches_and_reverses(env):
    database, env = env
    result = run_command(["safemigrate"], env, expect=0)
    assert query(database, WRONG) == [(0,)]
    assert "backfill backfill.Customer (forward):" in result.err
    assert "rows/s" in result.err
    # Finished: no progress left behind.
    assert query(database, "SELECT count(*) FROM django_safemigrate_backfillprogress") == [(0,)]

    run_command(["safemigrate", "backfill", "0001"], env, expect=0)
    assert query(
        database, "SELECT count(*) FROM backfill_customer WHERE email_normalized IS NOT NULL"
    ) == [(0,)]


def test_killed_backfill_resumes_at_the_next_batch(env):
    database, env = env
    run_command(["safemigrate", "backfill", "0001"], env, expect=0)
    runner = start_command(["safemigrate"], env)
    try:
        wait_for(
            lambda: (
                query(
                    database,
                    "SELECT coalesce(max(rows_done), 0) FROM django_safemigrate_backfillprogress",
                )[0][0]
                >= 5000
            )
        )
        os.kill(runner.pid, signal.SIGKILL)
    finally:
        runner.wait()
    (done_before,) = query(database, "SELECT rows_done FROM django_safemigrate_backfillprogress")[0]
    assert 5000 <= done_before < 30000
    # Every batch committed together with its progress row: exactly that many are done.
    assert query(
        database, "SELECT count(*) FROM backfill_customer WHERE email_normalized IS NOT NULL"
    ) == [(done_before,)]
    assert ("backfill", "0002_backfill_email_normalized") not in applied(database)

    resumed = run_command(["safemigrate"], env, expect=0)
    # It continued counting from the saved progress (a restart would end at the rows
    # that were left, not at all of them).
    assert "(forward): 30,000 rows" in resumed.err
    assert query(database, WRONG) == [(0,)]
    assert applied(database, "backfill").count(("backfill", "0002_backfill_email_normalized")) == 1


@pytest.mark.django_db(transaction=True)
def test_a_row_the_application_changed_meanwhile_is_left_alone(monkeypatch):
    """The batch UPDATE checks ``where`` again, inside its own transaction."""
    from django.db import connection, models
    from django.db.migrations.state import ModelState, ProjectState
    from django.db.models import Q
    from django.db.models.functions import Lower

    from django_safemigrate import Backfill
    from django_safemigrate.execution import backfill

    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE race_customer (id bigserial PRIMARY KEY, email varchar(100), "
            "email_normalized varchar(100))"
        )
        cursor.execute(
            "INSERT INTO race_customer (email) "
            "SELECT 'U' || i || '@X' FROM generate_series(1, 2500) i"
        )
    state = ProjectState()
    state.add_model(
        ModelState(
            "race",
            "customer",
            [
                ("id", models.BigAutoField(primary_key=True)),
                ("email", models.CharField(max_length=100)),
                ("email_normalized", models.CharField(max_length=100, null=True)),
            ],
        )
    )
    original = backfill._Batches.batch

    def racing(self, first, *args):
        if first == 1:
            # The application writes row 1 after the batch's keys were read.
            with connection.cursor() as cursor:
                cursor.execute("UPDATE race_customer SET email_normalized = 'app' WHERE id = 1")
        return original(self, first, *args)

    monkeypatch.setattr(backfill._Batches, "batch", racing)
    operation = Backfill(
        "customer",
        set={"email_normalized": Lower("email")},
        where=Q(email_normalized__isnull=True),
        batch_size=1000,
    )
    try:
        with connection.schema_editor(atomic=False) as editor:
            operation.database_forwards("race", editor, state, state)
        with connection.cursor() as cursor:
            cursor.execute("SELECT email_normalized FROM race_customer WHERE id = 1")
            assert cursor.fetchone() == ("app",)
            cursor.execute(
                "SELECT count(*) FROM race_customer "
                "WHERE id > 1 AND email_normalized IS DISTINCT FROM lower(email)"
            )
            assert cursor.fetchone() == (0,)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE race_customer")
