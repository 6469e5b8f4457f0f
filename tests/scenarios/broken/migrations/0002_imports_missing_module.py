from django.db import migrations

import a_module_that_does_not_exist  # noqa: F401


class Migration(migrations.Migration):
    dependencies = [("broken", "0001_initial")]
    operations = []
