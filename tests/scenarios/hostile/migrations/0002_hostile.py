from django.db import migrations

from hostile import operations


class Migration(migrations.Migration):
    dependencies = [("hostile", "0001_initial")]
    operations = [
        operations.DropsThroughTheEditor(),
        operations.EditorCursor(),
        operations.GlobalConnection(),
        operations.DriverConnection(),
        operations.HeldDriver(),
        operations.Raises(),
        operations.CountsRenders(),
    ]
