from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("rt_shop", "0001_initial")]
    operations = [
        migrations.AddIndex("item", models.Index(fields=["sku"], name="rt_shop_item_sku_idx")),
    ]
