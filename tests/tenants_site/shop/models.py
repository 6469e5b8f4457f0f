import os

from django.db import models


class Item(models.Model):
    name = models.CharField(max_length=100, db_index=False)
    price = models.IntegerField(default=0)
    if os.environ.get("SHOP_MIGRATIONS") != "next":
        note = models.TextField(blank=True, default="")
    if os.environ.get("SHOP_MIGRATIONS") == "bench":
        sku = models.CharField(max_length=40, null=True)

    class Meta:
        indexes = [
            models.Index(fields=["name"], name="shop_item_name_idx"),
            *(
                [models.Index(fields=["price"], name="shop_item_price_idx")]
                if os.environ.get("SHOP_MIGRATIONS") == "next"
                else []
            ),
        ]

    def __str__(self) -> str:
        return self.name
