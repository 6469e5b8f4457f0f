from django.db import migrations, models
from django.db.models import Q, Value

from django_safemigrate import Backfill


class Migration(migrations.Migration):
    dependencies = [("fuzz", "0004_account_email_index")]
    operations = [
        Backfill("account", set={"status": Value("active")}, where=Q(status__isnull=True), reverse_set={"status": None}, batch_size=1000, throttle=0.01),
    ]
