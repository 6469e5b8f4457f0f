from django.db import models


class Invoice(models.Model):
    total = models.IntegerField()
    currency = models.CharField(max_length=3, null=True)

    class Meta:
        app_label = "ph_billing"
