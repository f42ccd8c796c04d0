"""Config: module forms, the JSON editor, export and import."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from tests.panel.conftest import login, require_route, screenshot


def open_config(page: Any, server: Any) -> None:
    require_route(server, "/api/config", "config")
    login(page, server)
    page.get_by_role("link", name="Config").click()
    page.get_by_role("heading", name="Whole config as JSON").wait_for()


def test_module_form_saves(page: Any, panel_server: Any) -> None:
    open_config(page, panel_server)
    form = page.get_by_role("form", name="ssh")
    form.get_by_label("maxSessionsPerUser").fill("12")
    form.get_by_role("button", name="Save ssh").click()

    expect(form.get_by_role("status")).to_contain_text("Saved")
    screenshot(page, "config-module-saved")
    config = panel_server.api("GET", "/api/config").json()
    assert config["modules"]["ssh"]["maxSessionsPerUser"] == 12


def test_module_form_error_at_field(page: Any, panel_server: Any) -> None:
    open_config(page, panel_server)
    form = page.get_by_role("form", name="ssh")
    form.get_by_label("maxHandlesPerSession").fill("0")
    form.get_by_role("button", name="Save ssh").click()

    field = form.locator(".field.invalid")
    expect(field).to_have_count(1)
    expect(field).to_contain_text("maxHandlesPerSession")
    screenshot(page, "config-module-invalid")
    config = panel_server.api("GET", "/api/config").json()
    assert config["modules"]["ssh"]["maxHandlesPerSession"] != 0


def test_json_editor_lists_validation_errors(page: Any, panel_server: Any) -> None:
    open_config(page, panel_server)
    editor = page.get_by_label("Config JSON")
    config = json.loads(editor.input_value())
    config["modules"]["dns"]["workers"] = 0
    config["modules"]["dns"]["noSuchKey"] = True
    editor.fill(json.dumps(config, indent=2))
    page.get_by_role("button", name="Save config").click()
    errors = page.locator("ul.validation")

    expect(errors).to_contain_text("modules.dns.workers")
    expect(errors).to_contain_text("modules.dns.noSuchKey")
    screenshot(page, "config-json-invalid")


def test_json_editor_rejects_malformed_text(page: Any, panel_server: Any) -> None:
    open_config(page, panel_server)
    page.get_by_label("Config JSON").fill("{ not json")
    page.get_by_role("button", name="Save config").click()

    expect(page.locator(".field.invalid")).to_contain_text("not valid JSON")


def test_json_editor_keeps_redacted_password(page: Any, panel_server: Any) -> None:
    # The editor shows the password as ******** and must not send it back.
    open_config(page, panel_server)
    editor = page.get_by_label("Config JSON")
    config = json.loads(editor.input_value())
    assert config["server"]["adminPanel"]["password"] == "********"
    config["modules"]["ssh"]["idleTimeout"] = 602
    editor.fill(json.dumps(config, indent=2))
    page.get_by_role("button", name="Save config").click()

    expect(page.get_by_text("Config saved.")).to_be_visible()
    assert panel_server.api("GET", "/api/status").status_code == 200
    saved = panel_server.api("GET", "/api/config").json()
    assert saved["modules"]["ssh"]["idleTimeout"] == 602


def test_export_and_import(page: Any, panel_server: Any, tmp_path: Path) -> None:
    open_config(page, panel_server)
    with page.expect_download() as download_info:
        page.get_by_role("button", name="Export").click()
    exported = json.loads(Path(download_info.value.path()).read_text())
    assert "modules" in exported

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"modules": {"http": {"port": "not a port"}}}))
    page.get_by_label("Import a file…").set_input_files(str(bad))
    expect(page.get_by_role("alert")).to_contain_text("port")
    screenshot(page, "config-import-invalid")

    exported["modules"]["ssh"]["maxSessionsPerUser"] = 9
    good = tmp_path / "good.json"
    good.write_text(json.dumps(exported))
    page.get_by_label("Import a file…").set_input_files(str(good))
    expect(page.get_by_text("Imported good.json")).to_be_visible()
    assert panel_server.api("GET", "/api/status").status_code == 200
    config = panel_server.api("GET", "/api/config").json()
    assert config["modules"]["ssh"]["maxSessionsPerUser"] == 9
