from django.db import migrations, models

from ._wait import insert_and_wait


class Migration(migrations.Migration):
    # Two steps: the Python in autocommit, then the field in a transaction.
    atomic = False
    dependencies = [("lockloss", "0001_initial")]
    operations = [
        migrations.RunPython(insert_and_wait("0002"), migrations.RunPython.noop),
        migrations.AddField("item", "code", models.CharField(max_length=20, null=True)),
    ]
