"""Mail: a mailbox created in the panel receives a message sent from it."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import expect

from tests.panel.conftest import (
    CountingServer,
    login,
    require_module,
    require_route,
    screenshot,
)
from tests.panel.hostile import hostile_html

DOMAIN = "panel-mail.test"


def ensure_mail_domain(server: Any) -> None:
    # A mailbox's domain may have to be one the server handles. A zone for it
    # is harmless where the mail API does not require one.
    if server.api("GET", "/api/dns/zones").status_code != 404:
        server.api("POST", "/api/dns/zones", json={"name": DOMAIN, "options": {}})


def test_create_mailbox_send_and_read(page: Any, panel_server: Any) -> None:
    require_route(panel_server, "/api/mailboxes", "mailboxes")
    require_module(panel_server, "email")
    ensure_mail_domain(panel_server)
    address = f"reader@{DOMAIN}"
    login(page, panel_server)
    page.get_by_role("link", name="Mail").click()
    page.get_by_role("button", name="Add a mailbox").click()
    form = page.get_by_role("form", name="New mailbox")
    form.get_by_label("Address").fill(address)
    form.get_by_label("Name").fill("Panel Reader")
    form.get_by_label("Quota (MiB)").fill("5")
    form.get_by_role("button", name="Create mailbox").click()
    generated = page.get_by_test_id("generated-password")
    expect(generated).to_be_visible()
    password = generated.inner_text()
    screenshot(page, "mail-mailbox-created")

    assert len(password) >= 16
    page.get_by_role("button", name="Done, I stored it").click()
    expect(page.get_by_test_id("generated-password")).to_have_count(0)
    assert password not in page.content()

    compose = page.get_by_role("form", name="Send a message")
    compose.get_by_label("From").fill(address)
    compose.get_by_label("To").fill(address)
    compose.get_by_label("Subject").fill("Hello from the panel")
    compose.get_by_label("Text", exact=True).fill("The body of the panel test.")
    compose.get_by_role("button", name="Send").click()
    expect(page.get_by_text("Message sent")).to_be_visible()

    page.get_by_role("link", name=address).click()
    link = page.get_by_role("link", name="Hello from the panel")
    for _ in range(25):
        if link.count():
            break
        page.get_by_role("button", name="Refresh").click()
        page.wait_for_timeout(200)
    link.click()
    expect(page.locator(".message")).to_contain_text("The body of the panel test.")
    screenshot(page, "mail-message-read")


def test_hostile_message_end_to_end(
    page: Any, panel_server: Any, counting_server: CountingServer
) -> None:
    require_route(panel_server, "/api/mailboxes", "mailboxes")
    require_module(panel_server, "email")
    ensure_mail_domain(panel_server)
    address = f"target@{DOMAIN}"
    created = panel_server.api("POST", "/api/mailboxes", json={"email": address})
    assert created.status_code == 201
    sent = panel_server.api(
        "POST",
        "/api/send-email",
        json={
            "from": address,
            "to": address,
            "subject": "Hostile end to end",
            "body": "plain version",
            "html": hostile_html(counting_server.url),
        },
    )
    assert sent.status_code == 200
    login(page, panel_server)
    page.goto(f"{panel_server.admin_url}/#/mail/{address}")
    page.get_by_role("link", name="Hostile end to end").click()
    frame = page.frame_locator("iframe.message-frame")
    expect(frame.locator("#greeting")).to_contain_text("visible text")
    page.wait_for_timeout(1500)
    screenshot(page, "mail-hostile-end-to-end")

    assert counting_server.paths == []
    assert page.evaluate("window.__pwned") is None


def test_mail_folders_and_unread_filter(page: Any, panel_server: Any) -> None:
    require_route(panel_server, "/api/mailboxes", "mailboxes")
    require_module(panel_server, "email")
    ensure_mail_domain(panel_server)
    address = f"folders@{DOMAIN}"
    panel_server.api("POST", "/api/mailboxes", json={"email": address})
    for subject in ("First note", "Second note"):
        panel_server.api(
            "POST",
            "/api/send-email",
            json={"from": address, "to": address, "subject": subject, "body": subject},
        )
    login(page, panel_server)
    page.goto(f"{panel_server.admin_url}/#/mail/{address}")
    page.get_by_role("link", name="First note").click()
    expect(page.locator(".message")).to_contain_text("First note")
    page.get_by_label("Move to").select_option("archive")
    page.get_by_role("button", name="Move", exact=True).click()
    expect(page.get_by_role("link", name="First note")).to_have_count(0)
    page.get_by_role("group", name="Folders").get_by_role(
        "button", name="archive"
    ).click()
    expect(page.get_by_role("link", name="First note")).to_be_visible()
    page.get_by_role("group", name="Folders").get_by_role(
        "button", name="inbox"
    ).click()
    page.get_by_label("Unread only").check()

    expect(page.get_by_role("link", name="Second note")).to_be_visible()
    screenshot(page, "mail-folders")
