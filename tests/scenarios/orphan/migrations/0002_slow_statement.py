import os

from django.db import migrations, models


def slow_statement(apps, schema_editor):
    # A statement that keeps running on the server after its runner is killed.
    seconds = float(os.environ.get("SLEEP_SECONDS", "0"))
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT pg_sleep(%s)", [seconds])


class Migration(migrations.Migration):
    dependencies = [("orphan", "0001_initial")]
    operations = [
        # Holds ACCESS EXCLUSIVE on orphan_item until the transaction ends.
        migrations.AddField("item", "flag", models.BooleanField(null=True)),
        migrations.RunPython(slow_statement, migrations.RunPython.noop),
    ]
