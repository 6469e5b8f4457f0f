from django.db import models


class Category(models.Model):
    name = models.CharField(max_length=50)

    class Meta:
        app_label = "fuzz_online"


class Item(models.Model):
    code = models.CharField(max_length=20, null=True)
    ref = models.CharField(max_length=20, null=True, unique=True)
    qty = models.IntegerField(default=0)
    note = models.CharField(max_length=100)
    amount = models.BigIntegerField()
    category = models.ForeignKey(Category, null=True, on_delete=models.SET_NULL)
    flag = models.IntegerField(default=1)

    class Meta:
        app_label = "fuzz_online"
        indexes = [
            models.Index(fields=["amount"], name="fuzz_online_amount_idx"),
            models.Index(fields=["qty"], name="fuzz_online_qty_idx"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["code"], name="fuzz_online_code_uniq"),
            models.CheckConstraint(condition=models.Q(qty__gte=0), name="fuzz_online_qty_gte_0"),
        ]
