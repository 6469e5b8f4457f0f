from django.db import models


class Product(models.Model):
    name = models.CharField(max_length=50)
    slug = models.SlugField(null=True)

    class Meta:
        app_label = "ph_catalog"
