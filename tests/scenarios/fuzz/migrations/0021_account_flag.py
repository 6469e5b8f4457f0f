from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("fuzz", "0020_backfill_order_note")]
    operations = [
        migrations.AddField("account", "flag", models.BooleanField(db_default=False)),
    ]
