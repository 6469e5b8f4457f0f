from django.db import models


class Customer(models.Model):
    name = models.CharField(max_length=50)
    vip = models.BooleanField(default=False)


class Tag(models.Model):
    name = models.CharField(max_length=20)


class Order(models.Model):
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE)
    total = models.IntegerField()
    tags = models.ManyToManyField(Tag)
    note = models.CharField(max_length=40, default="")
