"""SFTP users: accounts with keys, confined to a site."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from tests.panel.conftest import login, require_route, screenshot


def make_public_key(directory: Path) -> str:
    key = directory / "id_ed25519"
    subprocess.run(
        [
            "ssh-keygen",
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            "panel-test",
            "-f",
            str(key),
        ],
        check=True,
        timeout=30,
    )
    return key.with_suffix(".pub").read_text().strip()


def test_create_sftp_user_with_key(
    page: Any, panel_server: Any, tmp_path: Path
) -> None:
    require_route(panel_server, "/api/ssh/users", "SFTP users")
    vhost = panel_server.api("POST", "/api/vhosts", json={"domain": "sftp-site.test"})
    assert vhost.status_code == 201
    public_key = make_public_key(tmp_path)
    login(page, panel_server)
    page.get_by_role("link", name="SFTP users").click()
    page.get_by_role("button", name="Add an SFTP user").click()
    form = page.get_by_role("form", name="New SFTP user")
    form.get_by_label("Username").fill("uploader")
    form.get_by_label("Site").select_option(label="sftp-site.test")
    form.get_by_label("Public keys").fill(public_key)
    form.get_by_role("button", name="Create user").click()
    row = page.locator('tr[data-user="uploader"]')
    expect(row).to_contain_text("sftp-site.test")
    screenshot(page, "sftp-user-created")
    user = panel_server.api("GET", "/api/ssh/users/uploader").json()

    assert user["publicKeys"] == [public_key]
    assert user["vhostId"] == vhost.json()["id"]


def test_invalid_key_shown_at_field(page: Any, panel_server: Any) -> None:
    require_route(panel_server, "/api/ssh/users", "SFTP users")
    panel_server.api("POST", "/api/vhosts", json={"domain": "sftp-bad.test"})
    login(page, panel_server)
    page.get_by_role("link", name="SFTP users").click()
    page.get_by_role("button", name="Add an SFTP user").click()
    form = page.get_by_role("form", name="New SFTP user")
    form.get_by_label("Username").fill("badkey")
    form.get_by_label("Site").select_option(label="sftp-bad.test")
    form.get_by_label("Public keys").fill("ssh-ed25519 not-base64!")
    form.get_by_role("button", name="Create user").click()

    expect(form.locator(".field.invalid")).to_contain_text("invalid OpenSSH public key")
    screenshot(page, "sftp-invalid-key")
    assert panel_server.api("GET", "/api/ssh/users/badkey").status_code == 404
