"""A reviewer approves a blocked migration in the admin, in a real browser, end to end.

Real processes on a real PostgreSQL: ``safemigrate`` blocks a destructive
migration (exit 3, nothing applied), a reviewer approves it in Chromium through the
admin that ``runserver`` serves for that database, and ``safemigrate`` then
applies it. A staff user without the ``decide_migration`` permission sees no
decision form, and a forged POST with that user's session and CSRF token is
refused (403) with nothing recorded.

Playwright's Python API drives Debian's Chromium (``/usr/bin/chromium``); the test
is skipped when either is missing. A screenshot of the review page is saved to
``tests/artifacts/review-detail.png``.
"""

from __future__ import annotations

import secrets
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import (
    ROOT,
    applied,
    command_env,
    copy_scenario,
    fresh_database,
    manage,
    query,
    run_command,
)

try:
    from playwright.sync_api import (
        APIResponse,
        Browser,
        BrowserContext,
        Page,
        expect,
        sync_playwright,
    )
except ImportError:  # pragma: no cover - depends on the machine
    pytest.skip("playwright is not installed (pip install playwright)", allow_module_level=True)

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():  # pragma: no cover - depends on the machine
    pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)", allow_module_level=True)

pytestmark = pytest.mark.slow

ARTIFACTS = ROOT / "tests" / "artifacts"
APP = "governed_shop"
DESTRUCTIVE = "0003_remove_product_legacy_code"
TABLE = "governed_shop_product"
PASSWORD = secrets.token_urlsafe(12)
NOTE = "legacy_code is unused since release 2.3."

USERS = f"""
from django.contrib.auth.models import Permission, User

def make(username, *codenames):
    user = User.objects.create_user(username, password={PASSWORD!r}, is_staff=True)
    perms = Permission.objects.filter(
        content_type__app_label="django_safemigrate", codename__in=codenames
    )
    assert perms.count() == len(codenames), codenames
    user.user_permissions.set(perms)

make("rita", "view_governedmigration", "view_review", "decide_migration")
make("victor", "view_governedmigration", "view_review")
"""


def column_exists(database: str, table: str, column: str) -> bool:
    rows = query(
        database,
        "SELECT 1 FROM pg_attribute WHERE attrelid = %s::regclass AND attname = %s "
        "AND attnum > 0 AND NOT attisdropped",
        [table, column],
    )
    return bool(rows)


def reviews(database: str) -> list[tuple[Any, ...]]:
    return query(
        database,
        "SELECT r.decision, r.reviewer_name, r.source, r.checksum, r.note "
        "FROM django_safemigrate_review r ORDER BY r.id",
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def database() -> Iterator[str]:
    with fresh_database("smreview") as name:
        yield name


@pytest.fixture
def env(database: str, tmp_path: Path) -> dict[str, str]:
    copy_scenario(APP, tmp_path)
    return command_env(
        database, apps=[APP], pythonpath=[tmp_path], module="tests.review_site_settings"
    )


@pytest.fixture
def browser(monkeypatch: pytest.MonkeyPatch) -> Iterator[Browser]:
    # Playwright's sync API runs an event loop in this thread; Django (pytest-django)
    # would otherwise refuse to touch the database here.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def serve(env: dict[str, str], logs: Path) -> Iterator[str]:
    """The review site (admin) for the scenario database, in a ``runserver`` process."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    out = (logs / "runserver.log").open("w")
    proc = subprocess.Popen(
        manage("runserver", "--noreload", "--insecure", f"127.0.0.1:{port}"),
        env=env,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=out,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"runserver exited: {(logs / 'runserver.log').read_text()}")
            try:
                with urllib.request.urlopen(f"{base}/admin/login/", timeout=2) as response:
                    if response.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"runserver never answered: {proc.args}")
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        out.close()


def log_in(browser: Browser, base: str, username: str) -> tuple[BrowserContext, Page]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.goto(f"{base}/admin/login/?next=/admin/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("#user-tools")).to_contain_text(username.upper(), ignore_case=True)
    return context, page


def post_decision(context: BrowserContext, url: str, **fields: str) -> APIResponse:
    """A scripted POST with the context's session and a valid CSRF token (no form)."""
    token = next(c["value"] for c in context.cookies() if c["name"] == "csrftoken")
    return context.request.post(url, form={"csrfmiddlewaretoken": token, **fields}, max_redirects=0)


def approve_in_browser(browser: Browser, base: str, database: str, checksum: str) -> str:
    """Rita finds the blocked migration, reads it and approves it; returns its page's URL."""
    context, page = log_in(browser, base, "rita")
    page.locator("tr.model-governedmigration th a").click()
    expect(page.locator("#result_list")).to_contain_text(DESTRUCTIVE)
    expect(page.locator("#result_list .sm-risk-destructive")).to_have_count(1)
    page.get_by_role("link", name=DESTRUCTIVE).click()
    detail_url = page.url
    expect(page.locator("#sm-findings")).to_contain_text("SM201")
    expect(page.locator("#sm-sql pre")).to_contain_text("DROP COLUMN")
    expect(page.locator("#sm-sql pre")).to_contain_text('"legacy_code"')
    expect(page.locator("#sm-steps")).to_contain_text("ACCESS EXCLUSIVE")
    expect(page.locator("#sm-tables")).to_contain_text(TABLE)
    expect(page.locator("#sm-history")).to_contain_text("No decision yet.")
    decide_url = base + str(page.locator("#decision_form").get_attribute("action"))

    page.fill("#id_note", NOTE)
    page.get_by_role("button", name="Approve").click()
    expect(page.locator(".messagelist .success")).to_contain_text(f"Approved {APP}.{DESTRUCTIVE}")
    assert page.url == detail_url
    expect(page.locator("#sm-history")).to_contain_text(NOTE)
    expect(page.locator("#content-main .sm-status-approved")).to_have_count(1)
    ARTIFACTS.mkdir(exist_ok=True)
    screenshot = ARTIFACTS / "review-detail.png"
    page.screenshot(path=str(screenshot), full_page=True)
    assert screenshot.stat().st_size > 10_000
    assert reviews(database) == [("approve", "rita", "admin", checksum, NOTE)]

    # Control for the forged POST below: the same scripted request passes the CSRF
    # check for a reviewer (here refused for its empty note, nothing recorded).
    response = post_decision(context, decide_url, decision="reject", note="", checksum=checksum)
    assert response.status == 302
    assert len(reviews(database)) == 1
    context.close()
    return detail_url


def refused_without_permission(
    browser: Browser, base: str, database: str, detail_url: str, checksum: str
) -> None:
    """Victor may read the page but sees no decision form; a forged POST gets 403."""
    context, page = log_in(browser, base, "victor")
    page.goto(detail_url)
    expect(page.locator("#sm-findings")).to_contain_text("SM201")
    expect(page.get_by_role("button", name="Approve")).to_have_count(0)
    expect(page.get_by_role("button", name="Reject")).to_have_count(0)
    expect(page.locator("#decision_form")).to_have_count(0)
    decide_url = detail_url.replace("/change/", "/decide/")
    before = len(reviews(database))
    response = post_decision(
        context,
        decide_url,
        decision="reject",
        note="Forged by a user who may not decide.",
        checksum=checksum,
    )
    assert response.status == 403
    assert "CSRF" not in response.text()  # refused for the permission, not the token
    assert len(reviews(database)) == before
    context.close()


def test_reviewer_approves_a_blocked_migration_in_the_browser(
    database: str, env: dict[str, str], browser: Browser, tmp_path: Path
) -> None:
    # The first deploy: a new database is not gated.
    run_command(["safemigrate", APP, "0002"], env, expect=0)
    assert column_exists(database, TABLE, "legacy_code")

    # The next deploy brings a destructive migration: blocked, nothing applied.
    blocked = run_command(["safemigrate"], env, expect=3)
    assert f"{APP}.{DESTRUCTIVE}" in blocked.err
    assert column_exists(database, TABLE, "legacy_code")
    assert (APP, DESTRUCTIVE) not in applied(database)
    [(status, risk, checksum)] = query(
        database,
        "SELECT status, risk, checksum FROM django_safemigrate_governedmigration "
        "WHERE app_label = %s AND name = %s",
        [APP, DESTRUCTIVE],
    )
    assert (status, risk) == ("pending_review", "destructive")

    run_command(["shell", "-c", USERS], env, expect=0)

    with serve(env, tmp_path) as base:
        detail_url = approve_in_browser(browser, base, database, checksum)

        # Approved: the deploy goes ahead, and the column is gone.
        run_command(["safemigrate"], env, expect=0)
        assert (APP, DESTRUCTIVE) in applied(database)
        assert not column_exists(database, TABLE, "legacy_code")
        assert column_exists(database, TABLE, "name")

        refused_without_permission(browser, base, database, detail_url, checksum)
