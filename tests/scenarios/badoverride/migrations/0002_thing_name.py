import json
import os

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("badoverride", "0001_initial")]
    # The test sets the override (JSON, so NaN and Infinity can be written).
    safemigrate_timeouts = json.loads(os.environ.get("BAD_OVERRIDE", "null"))
    operations = [migrations.AddField("thing", "name", models.TextField(null=True))]
