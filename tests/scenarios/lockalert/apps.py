import json
import os

from django.apps import AppConfig


def record_alert(sender, **kwargs):
    """Append what the signal carried to SCENARIO_ALERT_FILE, one JSON object a line."""
    with open(os.environ["SCENARIO_ALERT_FILE"], "a") as out:
        out.write(json.dumps({"sender": sender.__name__, **kwargs}, default=str) + "\n")
    if os.environ.get("SCENARIO_ALERT_RAISE"):
        raise ConnectionError("the pager cannot be reached")


class LockAlertConfig(AppConfig):
    """Connects a receiver to ``lock_wait_alert``, as a project telling its pager would."""

    name = "lockalert"

    def ready(self):
        from django_safemigrate.governance.signals import lock_wait_alert

        lock_wait_alert.connect(record_alert)
