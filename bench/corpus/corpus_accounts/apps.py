from django.apps import AppConfig


class CorpusAccountsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "corpus_accounts"
