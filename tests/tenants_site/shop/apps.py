from django.apps import AppConfig


class ShopConfig(AppConfig):
    name = "tests.tenants_site.shop"
    label = "shop"
