from django.contrib import admin

from .models import (
    Category,
    Coupon,
    Customer,
    Order,
    OrderLine,
    Product,
    Review,
    StockLevel,
    Warehouse,
)


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "parent", "position"]
    prepopulated_fields = {"slug": ["name"]}


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ["name", "sku", "category", "price", "is_active"]
    list_filter = ["is_active", "category"]
    search_fields = ["name", "sku"]


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ["email", "first_name", "last_name", "marketing_opt_in"]
    search_fields = ["email_normalized", "last_name"]


class OrderLineInline(admin.TabularInline):
    model = OrderLine
    extra = 0


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = ["id", "customer", "status", "currency", "created_at"]
    list_filter = ["status"]
    search_fields = ["external_reference"]
    inlines = [OrderLineInline]


@admin.register(Coupon)
class CouponAdmin(admin.ModelAdmin):
    list_display = ["code", "discount_percent", "valid_from", "valid_until", "is_active"]


@admin.register(Review)
class ReviewAdmin(admin.ModelAdmin):
    list_display = ["product", "customer", "rating", "is_published"]
    list_filter = ["is_published", "rating"]


@admin.register(Warehouse)
class WarehouseAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "city", "is_active"]


@admin.register(StockLevel)
class StockLevelAdmin(admin.ModelAdmin):
    list_display = ["product", "warehouse", "quantity", "reorder_threshold"]
    list_filter = ["warehouse"]
