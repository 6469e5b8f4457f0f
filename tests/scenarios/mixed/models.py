from django.db import models


class Item(models.Model):
    name = models.CharField(max_length=50)
    sku = models.CharField(max_length=60, null=True)

    class Meta:
        app_label = "mixed"
        indexes = [models.Index(fields=["sku"], name="mixed_item_sku_idx")]
