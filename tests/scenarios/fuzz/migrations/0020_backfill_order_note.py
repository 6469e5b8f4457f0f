from django.db import migrations, models
from django.db.models import Q, Value
from django.db.models.functions import Upper

from django_safemigrate import Backfill


class Migration(migrations.Migration):
    dependencies = [("fuzz", "0019_tag_name_unique_index")]
    operations = [
        Backfill("order", set={"note": Upper("note")}, where=Q(note="n"), reverse_set={"note": Value("n")}, reverse_where=Q(note="N"), batch_size=1500, throttle=0.01),
    ]
