from django.db import models


class Item(models.Model):
    name = models.CharField(max_length=50)
    # Not in any migration: checkmigrations reports SM901.
    colour = models.CharField(max_length=20, null=True)

    class Meta:
        app_label = "drifted"
