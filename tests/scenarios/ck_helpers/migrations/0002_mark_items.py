from django.db import migrations

from ck_helpers import cleanup
from ck_helpers.operations import TouchItems


class Migration(migrations.Migration):
    dependencies = [("ck_helpers", "0001_initial")]
    operations = [
        migrations.RunPython(cleanup.forwards, migrations.RunPython.noop),
        TouchItems(),
    ]
