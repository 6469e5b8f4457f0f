"""Reviewers use the review screen in a real browser, by keyboard, end to end.

Real processes on a real PostgreSQL: ``safemigrate`` blocks a destructive
migration (exit 3, nothing applied) and, behind it, the migration that depends on
it. In Chromium, through the admin that ``runserver`` serves for that database, at
1280, 1440 and 390 pixels wide, in the light and the dark theme: the list is in
plan order and says where each migration stands, the page shows what a reviewer
reads, nothing is wider than the window, and the screen's colours are the admin's.
A reviewer rejects the migration and then approves it with the keyboard only (Tab
and Enter); the rejection keeps the deploy blocked, the approval lets it through,
and the column is gone from the catalogs. A staff user without the
``decide_migration`` permission is told which permission deciding needs, and a
forged POST with that user's session and CSRF token is refused (403) with nothing
recorded.

Playwright's Python API drives Debian's Chromium (``/usr/bin/chromium``); the test
is skipped when either is missing. Screenshots of every page at every width and
theme are written to ``$SAFEMIGRATE_TEST_SCREENSHOTS`` (default: a directory of
pytest's temporary directory, printed at the end of the test).
"""

from __future__ import annotations

import os
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

pytestmark = [pytest.mark.slow, pytest.mark.once]

APP = "review_shop"
#: The plan after the first deploy, in the order migrate applies it.
PLAN = ["0002_product_sku", "0003_remove_product_legacy_code", "0004_product_stock"]
DESTRUCTIVE = "0003_remove_product_legacy_code"
TABLE = "review_shop_product"
PASSWORD = secrets.token_urlsafe(12)
REJECTION = "The nightly export still reads legacy_code."
APPROVAL = "The export stopped reading legacy_code in release 2.4."
WIDTHS = (1280, 1440, 390)
PERMISSION = "django_safemigrate.decide_migration"

USERS = f"""
from django.contrib.auth.models import Permission, User

def make(username, *codenames):
    user = User.objects.create_user(username, password={PASSWORD!r}, is_staff=True)
    perms = Permission.objects.filter(
        content_type__app_label="django_safemigrate", codename__in=codenames
    )
    assert perms.count() == len(codenames), codenames
    user.user_permissions.set(perms)

make("rita", "view_governedmigration", "view_review", "view_run", "decide_migration")
make("victor", "view_governedmigration", "view_review")
"""

#: Everything on the page wider than the window, or scrolling sideways inside it.
OVERFLOW = """
() => {
  const root = document.documentElement;
  const found = [];
  if (root.scrollWidth > root.clientWidth) {
    found.push(`document ${root.scrollWidth} > ${root.clientWidth}`);
  }
  for (const el of document.querySelectorAll('#content *')) {
    const style = getComputedStyle(el);
    if (el.clientWidth > 1 && el.scrollWidth > el.clientWidth + 1
        && ['auto', 'scroll'].includes(style.overflowX)) {
      found.push(`${el.tagName}.${el.className} scrolls ${el.scrollWidth} > ${el.clientWidth}`);
    }
  }
  return found;
}
"""

#: Text of the screen's own parts whose contrast with what is behind it is below
#: 4.5:1 (WCAG AA): what a colour written for the light theme does in the dark one.
LOW_CONTRAST = """
() => {
  const parse = (c) => (c.match(/[\\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const behind = (el) => {
    for (let e = el; e; e = e.parentElement) {
      const bg = parse(getComputedStyle(e).backgroundColor);
      if (bg.length >= 3 && (bg.length === 3 || bg[3] > 0)) return bg;
    }
    return [255, 255, 255];
  };
  const ours = '.sm-sections, .sm-summary, .sm-state, .sm-badge, .field-review, ' +
    '.sm-decision, .sm-readonly-note';
  const low = [];
  for (const part of document.querySelectorAll(ours)) {
    for (const el of [part, ...part.querySelectorAll('*')]) {
      const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
      if (!own || !el.getClientRects().length) continue;
      const [a, b] = [lum(parse(getComputedStyle(el).color)), lum(behind(el))];
      const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
      if (ratio < 4.5) low.push(`${el.tagName}.${el.className} ${ratio.toFixed(2)}`);
    }
  }
  return low;
}
"""

#: The colours the admin's own variables give, and the ones the screen's parts use.
THEME = """
() => {
  const probe = document.createElement('div');
  document.body.appendChild(probe);
  const value = (variable, property) => {
    probe.style[property] = `var(${variable})`;
    return getComputedStyle(probe)[property];
  };
  const found = {
    darkened: value('--darkened-bg', 'backgroundColor'),
    body: getComputedStyle(document.body).backgroundColor,
    bodyVar: value('--body-bg', 'backgroundColor'),
    deleteBg: value('--delete-button-bg', 'backgroundColor'),
  };
  probe.remove();
  const summary = document.querySelector('.sm-summary, .sm-sections pre');
  found.ours = summary ? getComputedStyle(summary).backgroundColor : null;
  const destructive = document.querySelector('.sm-risk-destructive');
  found.destructive = destructive ? getComputedStyle(destructive).backgroundColor : null;
  return found;
}
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
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the screenshots go: ``$SAFEMIGRATE_TEST_SCREENSHOTS``, or pytest's tmp dir."""
    chosen = os.environ.get("SAFEMIGRATE_TEST_SCREENSHOTS")
    folder = Path(chosen) if chosen else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


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


def log_in(
    browser: Browser, base: str, username: str, width: int = 1280, scheme: str = "light"
) -> tuple[BrowserContext, Page]:
    context = browser.new_context(
        viewport={"width": width, "height": 900},
        color_scheme=scheme,  # type: ignore[arg-type]
    )
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.goto(f"{base}/admin/login/?next=/admin/django_safemigrate/governedmigration/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("#user-tools")).to_contain_text(username.upper(), ignore_case=True)
    return context, page


def post_decision(context: BrowserContext, url: str, **fields: str) -> APIResponse:
    """A scripted POST with the context's session and a valid CSRF token (no form)."""
    token = next(c["value"] for c in context.cookies() if c["name"] == "csrftoken")
    return context.request.post(url, form={"csrfmiddlewaretoken": token, **fields}, max_redirects=0)


def tab_to(page: Page, test: str, limit: int = 150) -> None:
    """Press Tab until the focused element passes ``test`` (a JS predicate on it)."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate(f"(el => ({test}))(document.activeElement)"):
            return
    raise AssertionError(f"Tab never reached an element where {test}")


def fits(page: Page, width: int) -> None:
    """Nothing is wider than the window, and nothing scrolls sideways inside it."""
    found = page.evaluate(OVERFLOW)
    assert found == [], f"{width}px: {found}"
    scroll, client = page.evaluate(
        "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert scroll <= client <= width


def looks_like_the_admin(page: Page, scheme: str) -> None:
    theme = page.evaluate(THEME)
    assert theme["body"] == theme["bodyVar"]
    if theme["ours"] is not None:
        assert theme["ours"] == theme["darkened"], theme
    if theme["destructive"] is not None:
        assert theme["destructive"] == theme["deleteBg"], theme
    red, green, blue = (int(v) for v in theme["body"][4:-1].split(",")[:3])
    dark = red + green + blue < 3 * 64
    assert dark is (scheme == "dark"), theme
    assert page.evaluate(LOW_CONTRAST) == [], scheme


def read_the_list(page: Page, width: int, scheme: str, shots: Path) -> None:
    names = page.locator("#result_list .sm-name").all_inner_texts()
    assert names == PLAN
    rows = page.locator("#result_list tbody tr")
    expect(rows.nth(0).locator(".sm-badge.sm-risk-risky")).to_have_count(1)
    expect(rows.nth(0)).to_contain_text("not required")
    expect(rows.nth(1).locator(".sm-state-needs_review")).to_have_text("Needs a review")
    expect(rows.nth(2).locator(".sm-state-waiting")).to_contain_text(
        f"Waits for {APP}.{DESTRUCTIVE}"
    )
    expect(page.locator("#sm-summary")).to_contain_text("REVIEW = 'destructive'")
    for i in range(3):
        box = rows.nth(i).locator(".sm-state").bounding_box()
        assert box is not None
        assert box["x"] >= 0
        assert box["x"] + box["width"] <= width, (width, i, box)
    fits(page, width)
    looks_like_the_admin(page, scheme)
    page.screenshot(path=str(shots / f"list-{width}-{scheme}.png"), full_page=True)


def read_the_migration(page: Page, width: int, scheme: str, shots: Path) -> None:
    expect(page.locator("#sm-findings")).to_contain_text("SM201")
    expect(page.locator("#sm-findings")).to_contain_text("Hint:")
    expect(page.locator("#sm-operations pre.sm-sql")).to_contain_text(
        f'ALTER TABLE "{TABLE}" DROP COLUMN "legacy_code"'
    )
    expect(page.locator("#sm-steps")).to_contain_text("ACCESS EXCLUSIVE")
    expect(page.locator("#sm-tables")).to_contain_text(TABLE)
    expect(page.locator("#sm-dependencies")).to_contain_text(f"{APP}.0004_product_stock")
    expect(page.locator(".field-judged_by")).to_contain_text("outcome blocked (exit 3)")
    fits(page, width)
    looks_like_the_admin(page, scheme)
    page.screenshot(path=str(shots / f"migration-{width}-{scheme}.png"), full_page=True)


def read_the_data_migration(page: Page, width: int, scheme: str, shots: Path) -> None:
    python = page.locator("#sm-operations pre.sm-python").first
    expect(python).to_contain_text("def fill_sku(apps, schema_editor):")
    expect(python).to_contain_text('product.sku = f"SKU-{product.pk:06d}"')
    expect(page.locator("#sm-steps")).to_contain_text(
        f"CREATE INDEX CONCURRENTLY review_shop_sku_idx ON {TABLE} (sku);"
    )
    fits(page, width)
    looks_like_the_admin(page, scheme)
    page.screenshot(path=str(shots / f"data-migration-{width}-{scheme}.png"), full_page=True)


def every_width_and_theme(browser: Browser, base: str, shots: Path) -> None:
    for width in WIDTHS:
        for scheme in ("light", "dark"):
            context, page = log_in(browser, base, "rita", width, scheme)
            read_the_list(page, width, scheme, shots)
            page.locator("#result_list").get_by_role("link", name=DESTRUCTIVE).click()
            read_the_migration(page, width, scheme, shots)
            page.go_back()
            page.locator("#result_list").get_by_role("link", name=PLAN[0]).click()
            read_the_data_migration(page, width, scheme, shots)
            context.close()


def decide_by_keyboard(
    browser: Browser, base: str, width: int, *, button: str, note: str, shots: Path
) -> None:
    """From the list to the decision, with Tab and Enter only: no mouse, no click."""
    context, page = log_in(browser, base, "rita", width)
    page.locator("body").focus()
    tab_to(page, f"el.tagName === 'A' && el.textContent.includes({DESTRUCTIVE!r})")
    page.keyboard.press("Enter")
    page.wait_for_load_state()
    expect(page.locator("#sm-findings")).to_contain_text("SM201")
    tab_to(page, "el.id === 'id_note'")
    page.keyboard.type(note)
    tab_to(page, f"el.type === 'submit' && el.value === {button!r}")
    styles = page.evaluate(
        "[getComputedStyle(document.activeElement).textTransform, document.activeElement.value]"
    )
    assert styles == ["none", button]  # written as Django writes buttons: no capitals
    page.keyboard.press("Enter")
    page.wait_for_load_state()
    verb = "Approved" if button == "Approve" else "Rejected"
    expect(page.locator(".messagelist .success")).to_contain_text(f"{verb} {APP}.{DESTRUCTIVE}")
    expect(page.locator("#sm-history .sm-review").first).to_contain_text(f"{verb} by rita")
    expect(page.locator("#sm-history .sm-review").first).to_contain_text(note)
    expect(page.locator("#sm-decision h2")).to_have_text("Decide again")
    page.screenshot(path=str(shots / f"decided-{button.lower()}-{width}.png"), full_page=True)
    context.close()


def refused_without_permission(browser: Browser, base: str, database: str, checksum: str) -> None:
    """Victor may read the page; it says which permission deciding needs; a forged
    POST gets 403 saying it too."""
    context, page = log_in(browser, base, "victor")
    page.locator("#result_list").get_by_role("link", name=DESTRUCTIVE).click()
    expect(page.locator("#sm-findings")).to_contain_text("SM201")
    expect(page.get_by_role("button", name="Approve")).to_have_count(0)
    expect(page.locator("#decision_form")).to_have_count(0)
    expect(page.locator("#sm-no-permission")).to_contain_text(PERMISSION)
    expect(page.locator("#sm-no-permission")).to_contain_text("Can approve or reject migrations")
    decide_url = page.url.replace("/change/", "/decide/")
    before = len(reviews(database))
    response = post_decision(
        context,
        decide_url,
        decision="approve",
        note="Forged by a user who may not decide.",
        checksum=checksum,
    )
    assert response.status == 403
    assert "CSRF" not in response.text()  # refused for the permission, not the token
    assert PERMISSION in response.text()
    assert len(reviews(database)) == before
    context.close()


def test_reviewers_use_the_review_screen_in_a_real_browser(
    database: str, env: dict[str, str], browser: Browser, tmp_path: Path, screenshots: Path
) -> None:
    # The first deploy: a new database is not gated.
    run_command(["safemigrate", APP, "0001"], env, expect=0)

    # The next deploy: the destructive migration needs a review, nothing is applied.
    blocked = run_command(["safemigrate"], env, expect=3)
    assert f"{APP}.{DESTRUCTIVE} needs a review (destructive)" in blocked.err
    assert column_exists(database, TABLE, "legacy_code")
    assert not column_exists(database, TABLE, "sku")
    [(checksum,)] = query(
        database,
        "SELECT checksum FROM django_safemigrate_governedmigration WHERE name = %s",
        [DESTRUCTIVE],
    )
    run_command(["shell", "-c", USERS], env, expect=0)

    with serve(env, tmp_path) as base:
        every_width_and_theme(browser, base, screenshots)
        refused_without_permission(browser, base, database, checksum)

        decide_by_keyboard(browser, base, 1280, button="Reject", note=REJECTION, shots=screenshots)
        assert reviews(database) == [("reject", "rita", "admin", checksum, REJECTION)]
        still = run_command(["safemigrate"], env, expect=3)
        assert f"{APP}.{DESTRUCTIVE} was rejected by a reviewer" in still.err
        assert column_exists(database, TABLE, "legacy_code")

        decide_by_keyboard(browser, base, 390, button="Approve", note=APPROVAL, shots=screenshots)
        assert reviews(database)[-1] == ("approve", "rita", "admin", checksum, APPROVAL)

        # Approved: the deploy goes ahead, the whole plan with it.
        run_command(["safemigrate"], env, expect=0)
        assert {(APP, name) for name in PLAN} <= set(applied(database))
        assert not column_exists(database, TABLE, "legacy_code")
        assert column_exists(database, TABLE, "stock")

        context, page = log_in(browser, base, "rita", 1440)
        expect(page.locator("#result_list .sm-state-applied")).to_have_count(len(PLAN))
        page.screenshot(path=str(screenshots / "list-applied-1440.png"), full_page=True)
        context.close()
    shots = sorted(p.name for p in screenshots.glob("*.png"))
    assert len(shots) == 3 * len(WIDTHS) * 2 + 3
    assert all((screenshots / name).stat().st_size > 10_000 for name in shots)
    print(f"\nScreenshots of the review screen: {screenshots}")
