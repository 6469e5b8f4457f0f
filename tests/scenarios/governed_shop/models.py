from django.db import models


class Product(models.Model):
    name = models.CharField(max_length=100)
    price = models.IntegerField(default=0)

    class Meta:
        app_label = "governed_shop"
        indexes = [models.Index(fields=["name"], name="governed_shop_name_idx")]
