from django.db import migrations, models
from django.contrib.postgres.operations import AddIndexConcurrently


class Migration(migrations.Migration):
    atomic = False
    dependencies = [("fuzz", "0003_account_name_index")]
    operations = [
        AddIndexConcurrently("account", models.Index(fields=["email"], name="fuzz_account_email_idx")),
    ]
