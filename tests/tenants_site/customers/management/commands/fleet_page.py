"""``fleet_page QUERY...``: GET the admin's "Tenant schemas" page (``run/fleet/QUERY``)
with Django's test client, as the users the tests need, and print what it showed as
JSON: each page's status, summary, rows, links and the SQL it ran; the status codes for
an anonymous visitor, a staff user without the view permission on runs, one with only
that permission, and a POST; whether the runs' list links to the page; whether a
transaction that read the fleet's states can go on.

Run with ``tests.tenants_site.admin_settings``: the admin is served on the public
schema's domain, ``testserver`` (the public tenant and its domain are made if missing).
"""

from __future__ import annotations

import json
from html.parser import HTMLParser
from typing import Any

from django.contrib.auth.models import Permission, User
from django.core.management.base import BaseCommand, CommandParser
from django.db import DatabaseError, connection, transaction
from django.db.migrations.loader import MigrationLoader
from django.test import Client as Browser
from django.test.utils import CaptureQueriesContext

from django_safemigrate.admin.ledger import RunAdmin
from django_safemigrate.tenants import expected_migrations, fleet_schemas, fleet_states
from tests.tenants_site.customers.models import Client, Domain

FLEET = "/admin/django_safemigrate/run/fleet/"
RUNS = "/admin/django_safemigrate/run/"


class Page(HTMLParser):
    """The rows of the schemas' table, the summary line, the footer and every link."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[dict[str, Any]] = []
        self.links: list[str] = []
        self.summary = ""
        self.footer = ""
        self._in_row = False
        self._in: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "a" and found.get("href"):
            self.links.append(str(found["href"]))
            if self._in_row:
                self.rows[-1]["links"].append(found["href"])
        if tag == "tr" and found.get("class") == "sm-schema":
            self._in_row = True
            self.rows.append(
                {
                    "schema": found["data-schema"],
                    "state": found["data-state"],
                    "cells": [],
                    "links": [],
                }
            )
        elif self._in_row and tag in ("th", "td"):
            self.rows[-1]["cells"].append("")
        elif tag == "div" and found.get("id") == "sm-fleet-summary":
            self._in = "summary?"
        elif tag == "p" and self._in == "summary?":
            self._in = "summary"
        elif tag == "p" and found.get("class") == "paginator":
            self._in = "footer"

    def handle_endtag(self, tag: str) -> None:
        if tag == "tr":
            self._in_row = False
        elif tag == "p" and self._in in ("summary", "footer"):
            self._in = None

    def handle_data(self, data: str) -> None:
        if self._in_row and self.rows[-1]["cells"]:
            self.rows[-1]["cells"][-1] += data
        elif self._in == "summary":
            self.summary += data
        elif self._in == "footer":
            self.footer += data


def _user(name: str, *, superuser: bool = False, permission: str | None = None) -> User:
    user = User.objects.filter(username=name).first()
    if user is None:
        user = User.objects.create_user(name, is_staff=True, is_superuser=superuser)
        if permission:
            user.user_permissions.add(Permission.objects.get(codename=permission))
    return user


def _transaction_survives() -> bool:
    """Whether a transaction that read the fleet's states (the ledger's tables missing or
    not) can still run a statement afterwards."""
    expected = expected_migrations(MigrationLoader(None, ignore_no_migrations=True))
    try:
        with transaction.atomic():
            fleet_states(connection, fleet_schemas(connection.alias), expected)
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
    except DatabaseError:
        return False
    return True


def _as(user: User | None, **options: Any) -> Browser:
    browser = Browser(**options)
    if user is not None:
        browser.force_login(user)
    return browser


class Command(BaseCommand):
    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("queries", nargs="*", default=[""])
        parser.add_argument("--per-page", type=int)

    def handle(self, *args: Any, **options: Any) -> None:
        if options["per_page"]:
            RunAdmin.fleet_per_page = options["per_page"]
        public = Client.objects.filter(schema_name="public").first()
        if public is None:
            public = Client.objects.create(schema_name="public", name="public")
            Domain.objects.create(domain="testserver", tenant=public, is_primary=True)
        boss = _as(_user("boss", superuser=True))
        pages = []
        for query in options["queries"] or [""]:
            with CaptureQueriesContext(connection) as ran:
                response = boss.get(FLEET + query)
            page = Page()
            page.feed(response.content.decode())
            pages.append(
                {
                    "query": query,
                    "status": response.status_code,
                    "summary": page.summary.strip(),
                    "footer": " ".join(page.footer.split()),
                    "rows": [
                        {
                            "schema": row["schema"],
                            "state": row["state"],
                            "cells": [" ".join(cell.split()) for cell in row["cells"]],
                            "links": row["links"],
                        }
                        for row in page.rows
                    ],
                    "links": page.links,
                    "queries": len(ran.captured_queries),
                    "statements": sorted(
                        {q["sql"].split(None, 1)[0].upper() for q in ran.captured_queries}
                    ),
                }
            )
        # Without the ledger's tables the runs' list fails: its status, not a traceback.
        runs = _as(_user("boss"), raise_request_exception=False).get(RUNS)
        report = {
            "pages": pages,
            "anonymous": _as(None).get(FLEET).status_code,
            "staff_without_permission": _as(_user("clerk")).get(FLEET).status_code,
            "viewer": _as(_user("viewer", permission="view_run")).get(FLEET).status_code,
            "post": boss.post(FLEET).status_code,
            "runs_status": runs.status_code,
            "runs_link": FLEET in runs.content.decode(),
            "transaction_survives": _transaction_survives(),
        }
        self.stdout.write(json.dumps(report, indent=2))
