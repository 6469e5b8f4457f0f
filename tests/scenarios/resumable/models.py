from django.db import models


class Account(models.Model):
    email = models.CharField(max_length=100)
    note = models.TextField(null=True)
    verified = models.BooleanField(null=True)

    class Meta:
        app_label = "resumable"
