"""A JSON formatter for log collectors: one JSON object a line.

Usable from Django's ``LOGGING`` (README, "Events and status")::

    LOGGING = {
        "version": 1,
        "formatters": {"json": {"()": "django_safemigrate.logging.JSONFormatter"}},
        "handlers": {"events": {"class": "logging.StreamHandler", "formatter": "json"}},
        "loggers": {"django_safemigrate.events": {"handlers": ["events"], "level": "INFO"}},
    }

Each line has ``time`` (UTC, ISO 8601), ``level``, ``logger``, ``event`` (``None`` for a
record that is not an event), ``message``, then the event's fields
(``record.safemigrate``, see :mod:`django_safemigrate.execution.events`) and, when the
record carries one, ``exception`` (the formatted traceback). A field never replaces one
of the first five keys.
"""

from __future__ import annotations

import datetime
import json
import logging
from typing import Any

#: The keys every line starts with, in this order.
BASE_KEYS = ("time", "level", "logger", "event", "message")


class JSONFormatter(logging.Formatter):
    """Formats a record as one line of JSON (values JSON cannot hold become strings)."""

    def format(self, record: logging.LogRecord) -> str:
        when = datetime.datetime.fromtimestamp(record.created, datetime.UTC)
        data: dict[str, Any] = {
            "time": when.isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "event": getattr(record, "event", None),
            "message": record.getMessage(),
        }
        fields = getattr(record, "safemigrate", None)
        if isinstance(fields, dict):
            for key, value in fields.items():
                data.setdefault(str(key), value)
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data, default=str, ensure_ascii=False)
