from django.db import models


class Order(models.Model):
    product_name = models.CharField(max_length=50)
    note = models.TextField(null=True)
    ref = models.CharField(max_length=20, null=True)

    class Meta:
        app_label = "ph_orders"
