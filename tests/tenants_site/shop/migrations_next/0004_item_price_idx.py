from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False
    dependencies = [("shop", "0003_remove_item_note")]
    operations = [
        AddIndexConcurrently("item", models.Index(fields=["price"], name="shop_item_price_idx")),
    ]
