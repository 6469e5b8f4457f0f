"""A custom operation class of the project."""

from django.db.migrations.operations.base import Operation


class TouchItems(Operation):
    reversible = True

    def state_forwards(self, app_label, state):
        pass

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        schema_editor.execute("UPDATE ck_helpers_item SET active = true WHERE name = 'keep'")

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        pass

    def describe(self):
        return "Mark the items to keep"
