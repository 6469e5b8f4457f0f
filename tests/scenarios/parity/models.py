from django.db import models


class Item(models.Model):
    id = models.AutoField(primary_key=True)
    code = models.CharField(max_length=20)
    qty = models.IntegerField(null=True)

    class Meta:
        indexes = [models.Index(fields=["qty"], name="parity_item_qty_idx")]


class Order(models.Model):
    item = models.ForeignKey(Item, on_delete=models.CASCADE)
    ref = models.CharField(max_length=20)
