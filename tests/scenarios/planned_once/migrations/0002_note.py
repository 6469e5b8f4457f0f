from django.db import migrations

from planned_once.operations import NoteAndIndexConcurrently, NoteOnce


class Migration(migrations.Migration):
    # Not atomic: the runner renders it to plan its steps.
    atomic = False
    dependencies = [("planned_once", "0001_initial")]
    operations = [NoteOnce(), NoteAndIndexConcurrently()]
