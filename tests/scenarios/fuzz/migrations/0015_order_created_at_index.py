from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("fuzz", "0014_order_created_at")]
    operations = [
        migrations.AddIndex("order", models.Index(fields=["created_at"], name="fuzz_order_created_idx")),
    ]
