"""Models of the example shop."""

from typing import Any

from django.db import models

# The example's history uses ``CheckConstraint(condition=...)`` and ``db_default``,
# so the example site needs Django 5.1 or later (the app itself supports 4.2+).


def normalize_email(email: str) -> str:
    return (email or "").strip().lower()


def check_constraint(condition: models.Q, name: str) -> models.CheckConstraint:
    return models.CheckConstraint(condition=condition, name=name)


class Category(models.Model):
    name = models.CharField(max_length=100)
    slug = models.SlugField(max_length=100, unique=True)
    parent = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="children"
    )
    position = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name_plural = "categories"
        ordering = ["position", "name"]

    def __str__(self) -> str:
        return self.name


class Product(models.Model):
    category = models.ForeignKey(Category, on_delete=models.PROTECT, related_name="products")
    name = models.CharField(max_length=200)
    sku = models.CharField("SKU", max_length=32, unique=True)
    price = models.DecimalField(max_digits=10, decimal_places=2)
    description = models.TextField(blank=True)
    is_active = models.BooleanField(default=True)
    weight_grams = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            # Built with CREATE INDEX CONCURRENTLY (see migration 0022).
            models.Index(fields=["category", "is_active"], name="shop_product_cat_active_idx"),
        ]

    def __str__(self) -> str:
        return self.name


class Customer(models.Model):
    email = models.EmailField(max_length=254)
    # Lower-cased, stripped copy of ``email`` used for look-ups and de-duplication.
    email_normalized = models.EmailField(max_length=254, editable=False)
    first_name = models.CharField(max_length=100)
    last_name = models.CharField(max_length=100, db_index=True)
    # NULL means "never asked"; an empty string means "asked, none given".
    phone = models.CharField(max_length=32, null=True, blank=True)  # noqa: DJ001
    marketing_opt_in = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.first_name} {self.last_name} <{self.email}>"

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.email_normalized = normalize_email(self.email)
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and "email" in update_fields:
            kwargs["update_fields"] = {*update_fields, "email_normalized"}
        super().save(*args, **kwargs)


class Order(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        PAID = "paid", "Paid"
        SHIPPED = "shipped", "Shipped"
        CANCELLED = "cancelled", "Cancelled"

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="orders")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    coupon = models.ForeignKey(
        "Coupon", on_delete=models.SET_NULL, null=True, blank=True, related_name="orders"
    )
    currency = models.CharField(max_length=3, db_default="EUR")
    # Reference the payment provider hands back; support looks orders up by it.
    # NULL until the order is paid.
    external_reference = models.CharField(  # noqa: DJ001
        max_length=64, null=True, blank=True, db_index=True
    )
    shipping_address = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            models.Index(fields=["status", "created_at"], name="shop_order_status_created_idx"),
        ]

    def __str__(self) -> str:
        return f"Order #{self.pk}"


class OrderLine(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines")
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="order_lines")
    quantity = models.PositiveIntegerField(default=1)
    unit_price = models.DecimalField(max_digits=10, decimal_places=2)
    discount_amount = models.DecimalField(max_digits=10, decimal_places=2, default=0)

    def __str__(self) -> str:
        return f"{self.quantity} x {self.product}"


class Coupon(models.Model):
    code = models.CharField(max_length=32, unique=True)
    discount_percent = models.PositiveSmallIntegerField()
    valid_from = models.DateTimeField()
    valid_until = models.DateTimeField(null=True, blank=True)
    is_active = models.BooleanField(default=True)

    class Meta:
        constraints = [
            check_constraint(
                models.Q(discount_percent__gte=1, discount_percent__lte=100),
                name="shop_coupon_discount_percent_between_1_and_100",
            ),
        ]

    def __str__(self) -> str:
        return self.code


class Review(models.Model):
    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="reviews")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="reviews")
    rating = models.PositiveSmallIntegerField()
    title = models.CharField(max_length=120, blank=True)
    body = models.TextField(blank=True)
    is_published = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            check_constraint(
                models.Q(rating__gte=1, rating__lte=5), name="shop_review_rating_between_1_and_5"
            ),
            models.UniqueConstraint(
                fields=["product", "customer"], name="shop_review_one_per_customer_and_product"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.rating}/5 for {self.product}"


class Warehouse(models.Model):
    code = models.CharField(max_length=16, unique=True)
    name = models.CharField(max_length=100)
    city = models.CharField(max_length=100, blank=True)
    is_active = models.BooleanField(default=True)

    def __str__(self) -> str:
        return f"{self.code} ({self.name})"


class StockLevel(models.Model):
    warehouse = models.ForeignKey(Warehouse, on_delete=models.CASCADE, related_name="stock_levels")
    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="stock_levels")
    quantity = models.IntegerField(default=0)
    reorder_threshold = models.PositiveIntegerField(default=10)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["warehouse", "product"], name="shop_stocklevel_unique_warehouse_product"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.product} @ {self.warehouse.code}: {self.quantity}"
