import os

from django.db import migrations
from django.db.models import Q
from django.db.models.functions import Lower

from django_safemigrate import Backfill


class Migration(migrations.Migration):
    dependencies = [("backfill", "0001_initial")]
    operations = [
        Backfill(
            "customer",
            set={"email_normalized": Lower("email")},
            where=Q(email_normalized__isnull=True),
            reverse_set={"email_normalized": None},
            batch_size=1000,
            throttle=float(os.environ.get("BACKFILL_THROTTLE", "0")),
        ),
    ]
