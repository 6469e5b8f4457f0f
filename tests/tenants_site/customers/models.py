from django.db import models
from django_tenants.models import DomainMixin, TenantMixin


class Client(TenantMixin):
    name = models.CharField(max_length=100)
    # Tenants are made by the make_tenants command, their schemas migrated by
    # migrate_schemas (as a deploy does), not one by one on save.
    auto_create_schema = False


class Domain(DomainMixin):
    pass
