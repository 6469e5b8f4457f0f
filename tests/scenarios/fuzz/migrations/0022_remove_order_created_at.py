from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("fuzz", "0021_account_flag")]
    operations = [
        migrations.RemoveIndex("order", "fuzz_order_created_idx"),
        migrations.RemoveField("order", "created_at"),
    ]
