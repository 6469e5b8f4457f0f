"""A custom operation written for execution: it runs a statement through a cursor."""

from django.db.migrations.operations.base import Operation


class NoteOnce(Operation):
    reduces_to_sql = True
    reversible = False

    def state_forwards(self, app_label, state):
        pass

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        with schema_editor.connection.cursor() as cursor:
            cursor.execute("INSERT INTO planned_once_entry (note) VALUES ('ran')")

    def describe(self):
        return "Notes that it ran"


class NoteAndIndexConcurrently(NoteOnce):
    """Also sends a statement that refuses a transaction through the editor."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        super().database_forwards(app_label, schema_editor, from_state, to_state)
        schema_editor.execute(
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS planned_once_note ON planned_once_entry (note)"
        )
