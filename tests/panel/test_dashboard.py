"""The dashboard: status, module controls, charts, the live event feed."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.panel.conftest import (
    login,
    module_code_available,
    require_module,
    require_route,
    screenshot,
)

# The dashboard must show a module's new state within this time.
STATE_CHANGE_MS = 6000


def websocket_available(server: Any) -> bool:
    headers = {
        "Connection": "Upgrade",
        "Upgrade": "websocket",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
    }
    with httpx.Client() as client:
        with client.stream("GET", server.admin_url + "/", headers=headers) as response:
            return response.status_code == 101


def test_dashboard_shows_modules_and_charts(page: Any, panel_server: Any) -> None:
    login(page, panel_server)

    for name in ("http", "https", "dns", "email", "ssh"):
        expect(page.locator(f"tr[data-module={name}]")).to_be_visible()
    expect(page.locator(".chart canvas")).to_have_count(3)
    expect(page.get_by_test_id("uptime")).not_to_be_empty()
    screenshot(page, "dashboard")


def test_module_stop_and_start(page: Any, panel_server: Any) -> None:
    require_route(panel_server, "/api/modules", "modules")
    name = next((n for n in ("http", "dns", "email") if module_code_available(n)), None)
    if name is None:
        pytest.skip("no module's code is on this branch yet (http, dns, email)")
    assert panel_server.wait_module(name, running=True)["running"]
    login(page, panel_server)
    row = page.locator(f"tr[data-module={name}]")
    state = row.locator(".state")
    expect(state).to_have_attribute("data-state", "running")

    row.get_by_role("button", name=f"Stop {name}").click()
    expect(state).to_have_attribute("data-state", "stopped", timeout=STATE_CHANGE_MS)
    screenshot(page, "dashboard-module-stopped")
    stopped = panel_server.api("GET", f"/api/modules/{name}").json()

    row.get_by_role("button", name=f"Start {name}").click()
    expect(state).to_have_attribute("data-state", "running", timeout=STATE_CHANGE_MS)
    screenshot(page, "dashboard-module-started")
    started = panel_server.api("GET", f"/api/modules/{name}").json()

    assert stopped["running"] is False
    assert started["running"] is True


def test_live_feed_connects_and_lists_events(page: Any, panel_server: Any) -> None:
    if not websocket_available(panel_server):
        pytest.skip(
            "the WebSocket event feed is not on this branch yet: / refuses the upgrade"
        )
    login(page, panel_server)
    expect(page.locator(".live.on")).to_be_visible(timeout=10_000)

    # Any public event will do; a config change is one every build has.
    require_route(panel_server, "/api/config", "config")
    response = panel_server.api(
        "PUT", "/api/config", json={"modules": {"ssh": {"idleTimeout": 601}}}
    )
    assert response.status_code == 200
    expect(page.locator(".events li").first).to_contain_text(
        "configUpdated", timeout=10_000
    )
    screenshot(page, "dashboard-live-events")


def test_disconnection_is_shown(page: Any, panel_server: Any) -> None:
    # Refuse every WebSocket: the indicator must say so and count down to
    # the next attempt.
    page.route_web_socket("**/*", lambda socket: socket.close())
    login(page, panel_server)

    expect(page.locator(".live.off")).to_contain_text("reconnecting in", timeout=10_000)
    screenshot(page, "dashboard-disconnected")


def test_http_chart_plots_request_rate(page: Any, panel_server: Any) -> None:
    if not websocket_available(panel_server):
        pytest.skip("the WebSocket event feed is not on this branch yet")
    require_route(panel_server, "/api/vhosts", "vhosts")
    require_module(panel_server, "http")
    created = panel_server.api("POST", "/api/vhosts", json={"domain": "chart.test"})
    assert created.status_code == 201
    login(page, panel_server)
    caption = page.locator("figure.chart", has_text="HTTP requests").locator("strong")
    expect(page.locator(".live.on")).to_be_visible(timeout=10_000)

    # Rates come from the difference between two status events, 5 s apart:
    # keep the site busy until the chart reports a rate above zero.
    url = f"http://127.0.0.1:{panel_server.port('http')}/"
    with httpx.Client(headers={"Host": "chart.test"}) as client:
        for _ in range(150):
            for _ in range(5):
                client.get(url)
            text = caption.inner_text()
            if text not in ("–", "0.00"):
                break
            page.wait_for_timeout(100)
    screenshot(page, "dashboard-http-chart")

    assert float(caption.inner_text()) > 0
