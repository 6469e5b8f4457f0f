"""Products and orders pointing at the swappable user model and at ``fa_people``: a multi-table
child, M2M with and without ``through``, foreign keys to non-primary-key fields, a proxy. The final state of
the migrations."""

from django.conf import settings
from django.db import models


class Product(models.Model):
    id = models.AutoField(primary_key=True)
    code = models.CharField(max_length=20, unique=True)
    name = models.CharField(max_length=60)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.CASCADE, related_name="products"
    )
    venue = models.ForeignKey("fa_people.Venue", models.SET_NULL, null=True)
    tags = models.ManyToManyField("fa_people.Tag")


class CheapProduct(Product):
    class Meta:
        proxy = True


class Gadget(Product):
    battery = models.BooleanField(default=False)


class Order(models.Model):
    id = models.BigAutoField(primary_key=True)
    customer = models.ForeignKey(settings.AUTH_USER_MODEL, models.PROTECT)
    items = models.ManyToManyField(Product, through="OrderLine")


class OrderLine(models.Model):
    id = models.BigAutoField(primary_key=True)
    order = models.ForeignKey(Order, models.CASCADE)
    product = models.ForeignKey(Product, models.CASCADE)
    quantity = models.PositiveIntegerField(default=1)


class Review(models.Model):
    id = models.BigAutoField(primary_key=True)
    product = models.ForeignKey(Product, models.CASCADE, to_field="code")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, models.CASCADE, to_field="nickname")
    stars = models.PositiveSmallIntegerField()
