from django.db import models


class Product(models.Model):
    name = models.CharField(max_length=100)
    price = models.IntegerField(default=0)
    sku = models.CharField(max_length=40, null=True)
    stock = models.IntegerField(null=True)

    class Meta:
        app_label = "review_shop"
        indexes = [models.Index(fields=["sku"], name="review_shop_sku_idx")]
