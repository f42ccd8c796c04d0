"""Logging in to the panel: messages, throttling, the default password."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from tests.panel.conftest import login, require_route, screenshot
from tests.support import run_server


def test_login_shows_dashboard(page: Any, panel_server: Any) -> None:
    login(page, panel_server)

    expect(page.locator("tr[data-module=http]")).to_be_visible()
    expect(page.get_by_test_id("uptime")).to_be_visible()
    screenshot(page, "login-dashboard")


def test_login_wrong_password_message(page: Any, panel_server: Any) -> None:
    page.goto(panel_server.admin_url + "/")
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Sign in").click()
    alert = page.get_by_role("alert")
    alert.wait_for()
    screenshot(page, "login-wrong-password")

    assert "wrong" in alert.inner_text()
    assert page.get_by_role("heading", name="OneStack admin").is_visible()


def test_login_by_keyboard(page: Any, panel_server: Any) -> None:
    page.goto(panel_server.admin_url + "/")
    # The password field has focus first, and Enter submits the form.
    expect(page.get_by_label("Password")).to_be_focused()
    page.keyboard.type("admin123")
    page.keyboard.press("Enter")

    page.get_by_role("heading", name="Dashboard").wait_for()


def test_credentials_stay_in_tab_memory(page: Any, panel_server: Any) -> None:
    login(page, panel_server)
    storage = page.evaluate(
        "[localStorage.length, sessionStorage.length, document.cookie]"
    )
    markup = page.content()
    page.reload()

    assert storage == [0, 0, ""]
    assert "admin123" not in markup
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()


def test_default_password_banner(page: Any, panel_server: Any) -> None:
    login(page, panel_server)

    expect(page.get_by_text("still the default one")).to_be_visible()


def test_too_many_failures_show_retry_after(page: Any, tmp_path: Any) -> None:
    limits = {
        "failedLoginsBeforeDelay": 5,
        "failedLoginsBeforeBlock": 2,
        "blockSeconds": 120,
    }
    overrides = {"server": {"adminPanel": {"rateLimit": limits}}}
    with run_server(tmp_path / "throttled", overrides) as server:
        page.goto(server.admin_url + "/")
        alert = page.get_by_role("alert")
        page.get_by_label("Password").fill("wrong-password")
        page.get_by_role("button", name="Sign in").click()
        expect(alert).to_contain_text("wrong")
        page.get_by_role("button", name="Sign in").click()
        expect(alert).to_contain_text("wrong")
        page.get_by_role("button", name="Sign in").click()

        expect(alert).to_contain_text("Too many requests")
        expect(alert).to_contain_text("120 seconds")
        screenshot(page, "login-rate-limited")


def test_change_default_password(page: Any, tmp_path: Any) -> None:
    with run_server(tmp_path / "password") as server:
        require_route(server, "/api/config", "config")
        login(page, server)
        page.get_by_role("button", name="Change the password").click()
        page.get_by_label("New password").fill("a-better-secret-42")
        page.get_by_label("Repeat it").fill("a-better-secret-42")
        page.get_by_role("button", name="Change password").click()
        page.get_by_text("still the default one").wait_for(state="detached")
        # The tab keeps working with the new password in memory.
        page.get_by_role("link", name="Sites").click()
        page.get_by_role("heading", name="Sites").wait_for()
        screenshot(page, "password-changed")
        page.get_by_role("button", name="Log out").click()
        login(page, server, password="a-better-secret-42")

        expect(page.locator("tr[data-module=http]")).to_be_visible()
        expect(page.get_by_text("still the default one")).to_have_count(0)
        assert server.api("GET", "/api/status").status_code == 401


@pytest.mark.parametrize(
    ("first", "second", "expected"),
    [
        ("first-one-1", "second-one-2", "differ"),
        ("admin123", "admin123", "other than the default"),
    ],
)
def test_new_password_checked_in_form(
    page: Any, panel_server: Any, first: str, second: str, expected: str
) -> None:
    login(page, panel_server)
    page.get_by_role("button", name="Change the password").click()
    page.get_by_label("New password").fill(first)
    page.get_by_label("Repeat it").fill(second)
    page.get_by_role("button", name="Change password").click()

    expect(page.get_by_role("alert")).to_contain_text(expected)
