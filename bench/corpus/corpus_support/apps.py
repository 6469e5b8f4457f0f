from django.apps import AppConfig


class CorpusSupportConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "corpus_support"
