"""Custom operations that try to run statements while their SQL is only being rendered.

Each is what a custom operation written for execution looks like: at deploy it runs its
statements for real; the analysis (checkmigrations, safemigrate --plan, the judgement
before a run) must run none of them.
"""

import contextlib
import os

from django.db import connection
from django.db.migrations.operations.base import Operation


class _Custom(Operation):
    reduces_to_sql = True
    reversible = False

    def state_forwards(self, app_label, state):
        pass

    def describe(self):
        return type(self).__name__


class DropsThroughTheEditor(_Custom):
    """Goes through schema_editor.execute(): rendered and judged (SM202), never run."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        schema_editor.execute("DROP TABLE hostile_victim")


class EditorCursor(_Custom):
    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        with schema_editor.connection.cursor() as cursor:
            cursor.execute("CREATE TABLE pwned_editor (id integer)")
            cursor.execute("INSERT INTO hostile_item (name) VALUES ('editor')")


class GlobalConnection(_Custom):
    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        with connection.cursor() as cursor:
            cursor.execute("CREATE TABLE pwned_global (id integer)")
            cursor.execute("INSERT INTO hostile_item (name) VALUES ('global')")


class DriverConnection(_Custom):
    """Uses the psycopg connection under django.db.connection."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        connection.ensure_connection()
        driver = connection.connection
        driver.execute("CREATE TABLE pwned_driver (id integer)")
        driver.execute("INSERT INTO hostile_item (name) VALUES ('driver')")
        driver.commit()


class HeldDriver(_Custom):
    """Took the psycopg connection when its migration was loaded, before any rendering,
    and swallows what goes wrong."""

    def __init__(self):
        connection.ensure_connection()
        self.driver = connection.connection

    def deconstruct(self):
        return (type(self).__name__, [], {})

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        with contextlib.suppress(Exception):
            self.driver.execute("CREATE TABLE pwned_held (id integer)")
        with contextlib.suppress(Exception):
            self.driver.execute("INSERT INTO hostile_item (name) VALUES ('held')")
        with contextlib.suppress(Exception):
            self.driver.commit()


class Raises(_Custom):
    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        raise RuntimeError("needs a value only the live run has")


class CountsRenders(_Custom):
    """Notes each time its SQL is rendered (in the file RENDER_LOG names), and renders some."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        log = os.environ.get("RENDER_LOG")
        if log:
            with open(log, "a", encoding="utf-8") as handle:
                handle.write("rendered\n")
        schema_editor.execute("CREATE INDEX hostile_item_name ON hostile_item (name)")
