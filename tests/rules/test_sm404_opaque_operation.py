from __future__ import annotations

import contextlib

import pytest
from django.db import connection, connections, migrations, models
from django.db.migrations.operations.base import Operation

from django_safemigrate import Backfill
from tests.rules.judge import flags, judge, judge_report, leaves_alone

ITEM = migrations.CreateModel(
    "Item",
    [("id", models.BigAutoField(primary_key=True)), ("name", models.CharField(max_length=20))],
)


class _Custom(Operation):
    reduces_to_sql = True
    reversible = True

    def state_forwards(self, app_label, state):
        pass

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        pass

    def describe(self):
        return type(self).__name__


class RendersThroughTheEditor(_Custom):
    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        schema_editor.execute("CREATE TABLE rendered_only (id integer)")


class EditorCursor(_Custom):
    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        with schema_editor.connection.cursor() as cursor:
            cursor.execute("CREATE TABLE pwned_editor (id integer)")


class GlobalConnection(_Custom):
    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        with connection.cursor() as cursor:
            cursor.execute("CREATE TABLE pwned_global (id integer)")


class DriverConnection(_Custom):
    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        connections["default"].connection.execute("CREATE TABLE pwned_driver (id integer)")


class SwallowsTheRefusal(_Custom):
    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        try:
            with schema_editor.connection.cursor() as cursor:
                cursor.execute("INSERT INTO testapp_item (name) VALUES ('x')")
        except Exception:
            pass
        schema_editor.execute("SELECT 1")


class HeldCursor(_Custom):
    """Runs on a cursor opened before the rendering began (the execute wrapper refuses)."""

    cursor = None

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        self.cursor.execute("CREATE TABLE pwned_held_cursor (id integer)")


class HeldDriver(_Custom):
    """Runs on the driver connection taken before the rendering began (read-only refuses)."""

    driver = None

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        with contextlib.suppress(Exception):
            self.driver.execute("CREATE TABLE pwned_held_driver (id integer)")


class Raises(_Custom):
    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        raise RuntimeError("needs a value from somewhere")


class PythonOnly(_Custom):
    reduces_to_sql = False

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        raise AssertionError("never called by the analysis")


def tables_named(prefix: str) -> list[str]:
    return [t for t in connection.introspection.table_names() if t.startswith(prefix)]


@pytest.mark.parametrize(
    ("operation", "tried"),
    [
        (EditorCursor(), "CREATE TABLE pwned_editor (id integer) (through the schema editor's"),
        (GlobalConnection(), "the driver connection (cursor) of database 'default'"),
        (DriverConnection(), "the driver connection (execute) of database 'default'"),
        (SwallowsTheRefusal(), "INSERT INTO testapp_item (name) VALUES ('x')"),
    ],
    ids=["editor_cursor", "global_connection", "driver_connection", "swallowed"],
)
@pytest.mark.parametrize("offline", [False, True], ids=["live", "offline"])
def test_flags_an_operation_that_reaches_for_the_database_and_runs_nothing(
    operation, tried, offline
):
    report = judge_report([operation], setup=[ITEM], offline=offline)
    finding = flags("SM404", report.findings)
    assert finding.severity.value == "destructive"
    assert finding.blocking
    assert finding.operation == type(operation).__name__
    assert tried in finding.message
    assert "The analysis refused" in finding.message
    assert "schema_editor.execute()" in finding.hint
    assert report.risk.value == "destructive"
    assert tables_named("pwned") == []
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass('testapp_item')")
        assert cursor.fetchone() == (None,)


def test_the_connections_work_again_after_the_rendering():
    flags("SM404", judge([GlobalConnection()], setup=[ITEM]))
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        assert cursor.fetchone() == (1,)
        cursor.execute("SHOW transaction_read_only")
        assert cursor.fetchone() == ("off",)
        cursor.execute("SHOW lock_timeout")
        assert cursor.fetchone() == ("0",)
    assert not connection.execute_wrappers


def test_a_cursor_opened_before_the_rendering_is_refused():
    op = HeldCursor()
    with connection.cursor() as cursor:
        op.cursor = cursor
        finding = flags("SM404", judge([op], setup=[ITEM]))
    assert "CREATE TABLE pwned_held_cursor (id integer) (through database 'default')" in (
        finding.message
    )
    assert tables_named("pwned") == []


def test_the_driver_connection_taken_before_the_rendering_is_read_only():
    op = HeldDriver()
    connection.ensure_connection()
    op.driver = connection.connection
    finding = flags("SM404", judge([op], setup=[ITEM]))
    assert "a statement on the live connection, which its read-only transaction refused" in (
        finding.message
    )
    assert tables_named("pwned") == []


def test_flags_an_operation_whose_sql_cannot_be_rendered():
    finding = flags("SM404", judge([Raises()], setup=[ITEM]))
    assert finding.message == (
        "The SQL of Raises could not be rendered (RuntimeError: needs a value from somewhere), "
        "so what it does to the database is unknown."
    )


def test_flags_python_that_no_rule_sees():
    finding = flags("SM404", judge([PythonOnly()], setup=[ITEM]))
    assert "PythonOnly runs Python on the database (reduces_to_sql = False)" in finding.message
    wrapped = migrations.SeparateDatabaseAndState(database_operations=[PythonOnly()])
    assert flags("SM404", judge([wrapped], setup=[ITEM])).operation == "SeparateDatabaseAndState"


def test_an_acknowledgement_explains_but_the_review_stays_needed():
    report = judge_report(
        [EditorCursor()],
        setup=[ITEM],
        attrs={"safemigrate_acknowledge": {"SM404": "reviewed: creates an audit table"}},
    )
    finding = flags("SM404", report.findings)
    assert finding.acknowledged == "reviewed: creates an audit table"
    assert report.risk.value == "destructive"


def test_renders_what_goes_through_the_schema_editor_and_leaves_it_alone():
    report = judge_report([RendersThroughTheEditor()], setup=[ITEM])
    leaves_alone("SM404", report.findings)
    assert [s.sql for s in report.operations[0].statements] == [
        "CREATE TABLE rendered_only (id integer)"
    ]
    assert tables_named("rendered_only") == []


def backfill(apps, schema_editor):
    """Never run by the analysis."""


@pytest.mark.parametrize("offline", [False, True], ids=["live", "offline"])
def test_leaves_known_operations_alone(offline):
    ops = [
        migrations.AddField("item", "note", models.TextField(null=True)),
        migrations.AlterField("item", "name", models.CharField(max_length=40)),
        migrations.RunSQL("UPDATE testapp_item SET name = 'x'", migrations.RunSQL.noop),
        migrations.RunPython(backfill, migrations.RunPython.noop),
        Backfill("item", {"note": "n"}, reverse_set={"note": None}),
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.AddField("item", "x", models.IntegerField(null=True))]
        ),
    ]
    leaves_alone("SM404", judge(ops, setup=[ITEM], offline=offline, atomic=False))
