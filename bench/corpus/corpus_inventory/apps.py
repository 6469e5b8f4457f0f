from django.apps import AppConfig


class CorpusInventoryConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "corpus_inventory"
