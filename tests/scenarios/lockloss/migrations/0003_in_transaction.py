from django.db import migrations, models

from ._wait import insert_and_wait


class Migration(migrations.Migration):
    # One transaction: the Python and the field commit together, or not at all.
    dependencies = [("lockloss", "0002_outside_transaction")]
    operations = [
        migrations.RunPython(insert_and_wait("0003"), migrations.RunPython.noop),
        migrations.AddField("item", "note", models.CharField(max_length=20, null=True)),
    ]
