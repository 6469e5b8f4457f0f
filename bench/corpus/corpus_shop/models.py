from django.contrib.postgres.functions import RandomUUID
from django.db import models
from django.db.models.functions import Now, Upper


class Category(models.Model):
    name = models.CharField(max_length=100)
    slug = models.SlugField(unique=True)

    def __str__(self) -> str:
        return self.name


class Tag(models.Model):
    name = models.CharField(max_length=50, unique=True)

    def __str__(self) -> str:
        return self.name


class Product(models.Model):
    title = models.CharField(max_length=100)
    sku = models.CharField(max_length=32, unique=True)
    price = models.DecimalField(max_digits=12, decimal_places=2)
    category = models.ForeignKey(Category, on_delete=models.PROTECT, related_name="products")
    created_at = models.DateTimeField(auto_now_add=True)
    description = models.TextField(blank=True, db_default="")
    is_featured = models.BooleanField(db_default=False)
    updated_at = models.DateTimeField(auto_now=True)
    tags = models.ManyToManyField(Tag, blank=True, related_name="products")

    class Meta:
        indexes = [models.Index(Upper("sku"), name="product_sku_upper_idx")]

    def __str__(self) -> str:
        return self.title


class Order(models.Model):
    STATUSES = [
        ("new", "New"),
        ("paid", "Paid"),
        ("shipped", "Shipped"),
        ("cancelled", "Cancelled"),
    ]

    customer_email = models.EmailField()
    status = models.CharField(max_length=20, choices=STATUSES, default="new")
    total = models.DecimalField(max_digits=10, decimal_places=2, default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    placed_at = models.DateTimeField(db_default=Now())
    public_id = models.UUIDField(db_default=RandomUUID(), editable=False)
    # ``internal_note`` left the model in 0013; its column stays until a later release.

    class Meta:
        indexes = [models.Index(fields=["status", "-created_at"], name="order_status_created_idx")]

    def __str__(self) -> str:
        return f"order {self.pk}"


class OrderLine(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines")
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="+")
    quantity = models.BigIntegerField()
    unit_price = models.DecimalField(max_digits=10, decimal_places=2)

    def __str__(self) -> str:
        return f"{self.quantity} x {self.product_id}"
