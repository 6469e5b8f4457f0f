"""``make_tenants N``: N tenants (``tenant_001``...) with their empty schemas, as a fleet
has them before a deploy migrates them."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import connection

from tests.tenants_site.customers.models import Client


class Command(BaseCommand):
    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("count", type=int)

    def handle(self, *args: Any, **options: Any) -> None:
        names = [f"tenant_{i:03d}" for i in range(1, options["count"] + 1)]
        existing = set(Client.objects.values_list("schema_name", flat=True))
        Client.objects.bulk_create(
            Client(schema_name=name, name=name) for name in names if name not in existing
        )
        with connection.cursor() as cursor:
            for name in names:
                cursor.execute(f'CREATE SCHEMA IF NOT EXISTS "{name}"')
