from django.db import models


class Item(models.Model):
    name = models.CharField(max_length=50)
    flag = models.BooleanField(null=True)

    class Meta:
        app_label = "orphan"
