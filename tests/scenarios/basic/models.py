from django.db import models


class Item(models.Model):
    name = models.CharField(max_length=50)
    price = models.IntegerField(null=True)
    sku = models.CharField(max_length=20, null=True)

    class Meta:
        app_label = "basic"
