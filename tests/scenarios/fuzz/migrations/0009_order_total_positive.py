from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("fuzz", "0008_order_note_and_total_index")]
    operations = [
        migrations.AddConstraint("order", models.CheckConstraint(condition=models.Q(total__gte=0), name="fuzz_order_total_gte_0")),
    ]
