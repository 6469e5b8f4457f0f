from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("firstdeploy", "0002_pause")]
    # NOT NULL with a Python default only: the code still running inserts without it.
    operations = [migrations.AddField("item", "code", models.CharField(max_length=10, default="x"))]
