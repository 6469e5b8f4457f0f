from django.db import migrations, models


class Migration(migrations.Migration):
    safemigrate_acknowledge = {"SM101": "acked_item holds a dozen rows in every environment"}

    dependencies = [("acked", "0001_initial")]
    operations = [
        migrations.AddIndex("item", models.Index(fields=["name"], name="acked_item_name_idx")),
    ]
