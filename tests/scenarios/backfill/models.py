from django.db import models


class Customer(models.Model):
    email = models.CharField(max_length=100)
    email_normalized = models.CharField(max_length=100, null=True)

    class Meta:
        app_label = "backfill"
