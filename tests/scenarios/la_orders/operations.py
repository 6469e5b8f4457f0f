"""A project's own operation: the walk does not know what its state_forwards may change."""

from django.db.migrations.operations.base import Operation


class CommentOnTable(Operation):
    reduces_to_sql = True
    reversible = True

    def __init__(self, model_name, comment):
        self.model_name = model_name
        self.comment = comment

    def deconstruct(self):
        return self.__class__.__name__, [self.model_name, self.comment], {}

    def state_forwards(self, app_label, state):
        pass

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        model = to_state.apps.get_model(app_label, self.model_name)
        table = schema_editor.quote_name(model._meta.db_table)
        schema_editor.execute(f"COMMENT ON TABLE {table} IS %s", [self.comment])

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        model = from_state.apps.get_model(app_label, self.model_name)
        schema_editor.execute(
            f"COMMENT ON TABLE {schema_editor.quote_name(model._meta.db_table)} IS NULL"
        )

    def describe(self):
        return f"Comment on {self.model_name}"
