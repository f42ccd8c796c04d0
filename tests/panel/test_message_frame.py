"""The message view against hostile HTML, with the API responses stubbed.

These run whatever API groups exist: the panel code under test is the
message view, so Playwright fulfils the mail routes with fixed JSON. The
end-to-end version, with a real message sent through the server, is in
test_mail.py.
"""

from __future__ import annotations

import json
from typing import Any

from tests.panel.conftest import CountingServer, login, screenshot
from tests.panel.hostile import hostile_html

MAILBOX = "reader@example.test"


def stub_mail_routes(page: Any, message: dict[str, Any]) -> None:
    def answer(route: Any, body: Any) -> None:
        route.fulfill(
            status=200, content_type="application/json", body=json.dumps(body)
        )

    summary = {
        key: message[key] for key in ("id", "from", "to", "subject", "date", "read")
    }
    summary.update({"folder": "inbox", "size": 2048, "flagged": False})
    mailbox = {
        "email": MAILBOX,
        "name": "Reader",
        "quota": 10 << 20,
        "quotaUsed": 2048,
        "messageCount": 1,
        "unreadCount": 0,
        "enabled": True,
    }
    page.route("**/api/mailboxes", lambda route: answer(route, [mailbox]))
    page.route("**/api/mailboxes/*/messages*", lambda route: answer(route, [summary]))
    page.route(f"**/api/messages/{message['id']}", lambda route: answer(route, message))
    page.route(
        f"**/api/messages/{message['id']}/read",
        lambda route: answer(route, {"success": True}),
    )
    page.route("**/api/email/stats", lambda route: answer(route, {}))


def open_message(page: Any, server: Any, message: dict[str, Any]) -> Any:
    login(page, server)
    stub_mail_routes(page, message)
    page.goto(f"{server.admin_url}/#/mail/{MAILBOX}")
    page.get_by_role("link", name=message["subject"]).click()
    page.locator("iframe.message-frame").wait_for()
    frame = page.frame_locator("iframe.message-frame")
    frame.locator("#greeting").wait_for()
    return frame


def frame_of(page: Any) -> Any:
    return next(frame for frame in page.frames if frame != page.main_frame)


def test_hostile_html_runs_nothing(
    page: Any, panel_server: Any, counting_server: CountingServer
) -> None:
    message = {
        "id": 7001,
        "from": "attacker@example.test",
        "to": MAILBOX,
        "subject": "Hostile HTML",
        "date": "2026-01-02T03:04:05.000Z",
        "read": True,
        "body": "plain version",
        "html": hostile_html(counting_server.url),
        "headers": {},
    }

    frame_locator = open_message(page, panel_server, message)
    # Give any load or handler that escaped the sanitiser time to fire.
    page.wait_for_timeout(1500)
    screenshot(page, "message-hostile-html")

    assert counting_server.paths == []
    assert page.evaluate("window.__pwned") is None
    assert "visible text" in frame_locator.locator("#greeting").inner_text()
    frame = frame_of(page)
    markup = frame.content()
    assert counting_server.url not in markup
    for fragment in (
        "<script",
        "onload",
        "onerror",
        "onfocus",
        "javascript:",
        "<iframe",
        "<object",
    ):
        assert fragment not in markup.lower()


def test_frame_is_sandboxed_without_scripts(
    page: Any, panel_server: Any, counting_server: CountingServer
) -> None:
    message = {
        "id": 7002,
        "from": "sender@example.test",
        "to": MAILBOX,
        "subject": "Frame attributes",
        "date": "2026-01-02T03:04:05.000Z",
        "read": True,
        "body": "",
        "html": '<p id="greeting">hi</p>',
        "headers": {},
    }

    open_message(page, panel_server, message)
    sandbox = page.locator("iframe.message-frame").get_attribute("sandbox")
    srcdoc = page.locator("iframe.message-frame").get_attribute("srcdoc")

    assert sandbox == ""
    assert "img-src data:" in srcdoc
    assert "default-src 'none'" in srcdoc


def test_hostile_html_is_hostile_unsanitised(
    browser: Any, counting_server: CountingServer
) -> None:
    # The control for the tests above: the same HTML in a page without the
    # panel's defences runs its script and loads remote content, so an empty
    # count in the panel means blocked, not unreachable or harmless.
    context = browser.new_context()
    control = context.new_page()
    control.set_content(hostile_html(counting_server.url), wait_until="load")
    for _ in range(100):
        if {"/script-fetch", "/remote.png"} <= set(counting_server.paths):
            break
        control.wait_for_timeout(100)
    context.close()

    assert "/script-fetch" in counting_server.paths
    assert "/remote.png" in counting_server.paths
