from django.db import models
from django.db.models.functions import Now, Random


class Warehouse(models.Model):
    code = models.CharField(max_length=16)
    name = models.CharField(max_length=100)
    city = models.CharField(max_length=100, blank=True)

    class Meta:
        db_table = "inventory_warehouse"
        constraints = [
            models.UniqueConstraint(fields=["code"], name="inventory_warehouse_code_uniq"),
        ]

    def __str__(self) -> str:
        return self.code


class Location(models.Model):
    warehouse = models.ForeignKey(Warehouse, on_delete=models.CASCADE, related_name="locations")
    aisle = models.CharField(max_length=10)
    shelf = models.CharField(max_length=10)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["warehouse", "aisle", "shelf"], name="location_place_uniq"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.aisle}/{self.shelf}"


class StockItem(models.Model):
    warehouse = models.ForeignKey(Warehouse, on_delete=models.CASCADE, related_name="stock_items")
    sku = models.CharField(max_length=32)
    quantity = models.IntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)
    reserved = models.IntegerField(db_default=0)
    location = models.ForeignKey(
        Location,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        db_index=False,
        related_name="+",
    )
    counted_at = models.DateTimeField(null=True, blank=True, db_default=Now())
    shuffle_key = models.FloatField(null=True, db_default=Random())

    class Meta:
        indexes = [models.Index(fields=["location"], name="stockitem_location_idx")]

    def __str__(self) -> str:
        return self.sku


class Reservation(models.Model):
    stock_item = models.ForeignKey(StockItem, on_delete=models.CASCADE, related_name="reservations")
    quantity = models.IntegerField()
    expires_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.quantity} of {self.stock_item_id}"
