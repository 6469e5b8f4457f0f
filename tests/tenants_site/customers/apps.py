from django.apps import AppConfig


class CustomersConfig(AppConfig):
    name = "tests.tenants_site.customers"
    label = "customers"
