"""Every page renders, at desktop and phone width, whatever API exists."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from tests.panel.conftest import PHONE, login, screenshot

# Page, heading, and the list route whose absence the page must report.
PAGES = [
    ("dashboard", "Dashboard", "/api/status"),
    ("sites", "Sites", "/api/vhosts"),
    ("dns", "DNS", "/api/dns/zones"),
    ("mail", "Mail", "/api/mailboxes"),
    ("sftp", "SFTP users", "/api/ssh/users"),
    ("config", "Config", "/api/config"),
]


@pytest.mark.parametrize(("path", "heading", "route"), PAGES)
def test_page_renders(
    page: Any, panel_server: Any, path: str, heading: str, route: str
) -> None:
    login(page, panel_server)
    page.get_by_role("link", name=heading, exact=True).click()
    expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible()
    missing = panel_server.api("GET", route).status_code == 404
    notice = page.locator(".notice.unavailable")

    if missing:
        expect(notice).to_contain_text("not available in this version")
    else:
        page.wait_for_load_state("networkidle")
        expect(notice).to_have_count(0)
        expect(page.locator("p.error")).to_have_count(0)
    screenshot(page, f"page-{path}")


def test_pages_fit_phone_width(browser: Any, panel_server: Any) -> None:
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    phone = context.new_page()
    login(phone, panel_server)
    overflow = {}
    for path, heading, _route in PAGES:
        phone.goto(f"{panel_server.admin_url}/#/{path}")
        expect(phone.get_by_role("heading", name=heading, exact=True)).to_be_visible()
        phone.wait_for_load_state("networkidle")
        overflow[path] = phone.evaluate(
            "document.documentElement.scrollWidth - window.innerWidth"
        )
        screenshot(phone, f"phone-{path}")
    context.close()

    assert {path: pixels for path, pixels in overflow.items() if pixels > 0} == {}


def test_navigation_by_keyboard(page: Any, panel_server: Any) -> None:
    login(page, panel_server)
    page.get_by_role("link", name="OneStack").focus()
    # Brand, then Dashboard, Sites, DNS in the navigation.
    for _ in range(3):
        page.keyboard.press("Tab")
    focused = page.evaluate("document.activeElement.textContent")
    page.keyboard.press("Enter")

    assert focused == "DNS"
    expect(page.get_by_role("heading", name="DNS", exact=True)).to_be_visible()


def test_every_input_has_a_label(page: Any, panel_server: Any) -> None:
    unlabelled: dict[str, list[str]] = {}
    login(page, panel_server)
    for path, heading, _route in PAGES:
        page.goto(f"{panel_server.admin_url}/#/{path}")
        expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible()
        page.wait_for_load_state("networkidle")
        names = page.evaluate(
            """() => [...document.querySelectorAll('input, select, textarea')]
                 .filter((element) => element.labels.length === 0
                   && !element.getAttribute('aria-label'))
                 .map((element) => element.name || element.id || element.type)"""
        )
        if names:
            unlabelled[path] = names

    assert unlabelled == {}
