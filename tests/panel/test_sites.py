"""Sites: create a vhost in the panel and load its page by name."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from tests.panel.conftest import login, require_module, require_route, screenshot

DOMAIN = "panel-site.test"


def test_create_vhost_and_load_its_page(
    page: Any, browser: Any, panel_server: Any
) -> None:
    require_route(panel_server, "/api/vhosts", "vhosts")
    require_module(panel_server, "http")
    login(page, panel_server)
    page.get_by_role("link", name="Sites").click()
    page.get_by_role("button", name="Add a site").click()
    page.get_by_label("Domain").fill(DOMAIN)
    page.get_by_label("Aliases").fill(f"www.{DOMAIN}")
    page.get_by_role("button", name="Create site").click()
    row = page.locator(f'tr[data-domain="{DOMAIN}"]')
    expect(row).to_be_visible()
    screenshot(page, "sites-created")

    vhost = next(
        v
        for v in panel_server.api("GET", "/api/vhosts").json()
        if v["domain"] == DOMAIN
    )
    assert vhost["aliases"] == [f"www.{DOMAIN}"]
    Path(vhost["documentRoot"], "index.html").write_text(
        "<!doctype html><title>panel test</title><h1>Served for the panel test</h1>"
    )
    site = browser.new_context().new_page()
    # The http module picks up the new vhost within a second.
    url = f"http://{DOMAIN}:{panel_server.port('http')}/"
    for _ in range(30):
        response = site.goto(url)
        if response.status == 200:
            break
        site.wait_for_timeout(200)
    expect(site.get_by_role("heading")).to_have_text("Served for the panel test")
    screenshot(site, "sites-page-served")
    site.context.close()

    assert response.status == 200


def test_edit_and_delete_vhost(page: Any, panel_server: Any) -> None:
    require_route(panel_server, "/api/vhosts", "vhosts")
    created = panel_server.api("POST", "/api/vhosts", json={"domain": "edit-me.test"})
    assert created.status_code == 201
    login(page, panel_server)
    page.get_by_role("link", name="Sites").click()
    row = page.locator('tr[data-domain="edit-me.test"]')
    row.get_by_role("button", name="Details").click()
    page.get_by_role("button", name="Edit edit-me.test").click()
    page.get_by_label("Aliases").fill("alias.edit-me.test")
    page.get_by_label("Enabled").uncheck()
    page.get_by_role("button", name="Save").click()
    expect(row.locator("td").first).to_have_text("no")
    screenshot(page, "sites-edited")
    vhost = panel_server.api("GET", f"/api/vhosts/{created.json()['id']}").json()

    assert vhost["aliases"] == ["alias.edit-me.test"]
    assert vhost["enabled"] is False

    page.get_by_role("button", name="Delete edit-me.test").click()
    page.get_by_role("button", name="Confirm: Delete edit-me.test").click()
    expect(row).to_have_count(0)
    assert (
        panel_server.api("GET", f"/api/vhosts/{created.json()['id']}").status_code
        == 404
    )


def test_duplicate_domain_shown_at_field(page: Any, panel_server: Any) -> None:
    require_route(panel_server, "/api/vhosts", "vhosts")
    panel_server.api("POST", "/api/vhosts", json={"domain": "taken.test"})
    login(page, panel_server)
    page.get_by_role("link", name="Sites").click()
    page.get_by_role("button", name="Add a site").click()
    page.get_by_label("Domain").fill("taken.test")
    page.get_by_role("button", name="Create site").click()

    expect(page.locator(".field.invalid, p.error")).to_be_visible()
    screenshot(page, "sites-duplicate")
