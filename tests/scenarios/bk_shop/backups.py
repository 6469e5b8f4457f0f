"""BACKUP_CALLABLE values for the tests: a recovery point now, one too old, a failing API."""

import datetime

from django.utils import timezone


def recent(connection):
    return timezone.now()


def old(connection):
    return timezone.now() - datetime.timedelta(days=3)


def broken(connection):
    raise RuntimeError("the snapshot API answered 503")


def nothing(connection):
    return None


NOT_CALLABLE = "a string"
