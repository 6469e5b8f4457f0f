from django.db import models


class Note(models.Model):
    text = models.TextField()
    title = models.CharField(max_length=100, null=True)

    class Meta:
        app_label = "rt_oneway"
