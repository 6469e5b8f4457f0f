from django.db import models


class Item(models.Model):
    name = models.CharField(max_length=50, db_default="")
    sku = models.CharField(max_length=20)
    price = models.IntegerField(null=True)

    class Meta:
        app_label = "rt_shop"
        indexes = [models.Index(fields=["sku"], name="rt_shop_item_sku_idx")]
