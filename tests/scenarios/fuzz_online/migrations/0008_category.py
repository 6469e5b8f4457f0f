from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("fuzz_online", "0007_qty_check")]
    operations = [
        migrations.AddField(
            "item",
            "category",
            models.ForeignKey("fuzz_online.Category", null=True, on_delete=models.SET_NULL),
        ),
    ]
