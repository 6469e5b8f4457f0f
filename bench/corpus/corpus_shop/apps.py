from django.apps import AppConfig


class CorpusShopConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "corpus_shop"
