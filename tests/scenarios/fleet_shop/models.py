from django.db import models


class Product(models.Model):
    name = models.CharField(max_length=50)

    class Meta:
        app_label = "fleet_shop"


class Note(models.Model):
    text = models.TextField()

    class Meta:
        app_label = "fleet_shop"
