"""People and places: the swappable user model (``AUTH_USER_MODEL = "fa_people.Person"``),
a renamed model, a proxy. The final state of the migrations."""

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import models


class Person(AbstractBaseUser):
    id = models.BigAutoField(primary_key=True)
    nickname = models.CharField(max_length=40, unique=True)

    USERNAME_FIELD = "nickname"


class Staff(Person):
    class Meta:
        proxy = True


class Tag(models.Model):
    id = models.BigAutoField(primary_key=True)
    word = models.CharField(max_length=30, unique=True)


class Venue(models.Model):
    id = models.AutoField(primary_key=True)
    title = models.CharField(max_length=50)
    manager = models.ForeignKey(settings.AUTH_USER_MODEL, models.CASCADE)

