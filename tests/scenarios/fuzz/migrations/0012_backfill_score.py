from django.db import migrations, models
from django.db.models import F, Q

from django_safemigrate import Backfill


class Migration(migrations.Migration):
    dependencies = [("fuzz", "0011_account_score")]
    operations = [
        Backfill("account", set={"score": F("id") % 100}, where=Q(score__isnull=True), reverse_set={"score": None}, batch_size=2000, throttle=0.01),
    ]
