from django.apps import AppConfig


class CorpusBillingConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "corpus_billing"
