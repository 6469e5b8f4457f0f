from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("fuzz_online", "0006_qty_not_null")]
    operations = [
        migrations.AddConstraint(
            "item",
            models.CheckConstraint(condition=models.Q(qty__gte=0), name="fuzz_online_qty_gte_0"),
        ),
    ]
