import json
import os

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("lockretries", "0001_initial")]
    # The test sets the override (JSON).
    safemigrate_timeouts = json.loads(os.environ.get("LOCKRETRIES_OVERRIDE", "null"))
    operations = [
        migrations.AddField("item", "sku", models.CharField(max_length=20, null=True)),
    ]
