from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("fuzz_online", "0008_category")]
    operations = [
        migrations.AddIndex("item", models.Index(fields=["qty"], name="fuzz_online_qty_idx")),
        migrations.RemoveIndex("item", "fuzz_online_note_idx"),
    ]
