"""The panel's static files: paths, media types and security headers."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from onestack.admin.panel import PANEL_DIR, resolve_panel_file
from tests.support import Server

PANEL_FILES = ["/", "/index.html", "/app.js", "/style.css", "/vendor/preact.module.js"]


def test_resolve_index_for_root() -> None:
    assert resolve_panel_file("/") == PANEL_DIR / "index.html"


@pytest.mark.parametrize(
    "path",
    [
        "/../app.py",
        "/vendor/../../panel.py",
        "/%2e%2e/app.py",
        "/.hidden",
        "/vendor",
        "/missing.js",
        "//etc/passwd",
    ],
)
def test_resolve_rejects_outside_and_unknown(path: str) -> None:
    assert resolve_panel_file(path) is None


def test_resolve_rejects_symlink_out_of_root(tmp_path: Path) -> None:
    root = tmp_path / "panel"
    root.mkdir()
    (tmp_path / "secret.js").write_text("secret")
    (root / "link.js").symlink_to(tmp_path / "secret.js")
    assert resolve_panel_file("/link.js", root) is None


def test_every_module_import_is_a_relative_path() -> None:
    # Without an import map, a bare specifier such as "preact" fails to load.
    for script in PANEL_DIR.rglob("*.js"):
        text = script.read_text()
        assert 'from"preact"' not in text, script
        assert 'from "preact"' not in text, script


@pytest.fixture
def server(panel_server: Server) -> Server:
    return panel_server


@pytest.mark.parametrize("path", PANEL_FILES)
def test_panel_file_headers(server, path: str) -> None:
    response = httpx.get(server.admin_url + path)

    assert response.status_code == 200
    policy = response.headers["content-security-policy"]
    assert "script-src 'self';" in policy
    assert "unsafe-inline" not in policy.split("style-src")[0]
    assert "object-src 'none'" in policy
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["x-frame-options"] == "DENY"


def test_panel_media_types(server) -> None:
    index = httpx.get(server.admin_url + "/")
    script = httpx.get(server.admin_url + "/app.js")
    style = httpx.get(server.admin_url + "/style.css")

    assert index.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="app.js">' in index.text
    assert script.headers["content-type"].startswith("text/javascript")
    assert style.headers["content-type"].startswith("text/css")


def test_index_has_no_inline_script(server) -> None:
    text = httpx.get(server.admin_url + "/").text

    assert "<script>" not in text
    assert " style=" not in text
    assert "onload=" not in text


def test_panel_missing_file_is_404_with_headers(server) -> None:
    response = httpx.get(server.admin_url + "/missing.js")

    assert response.status_code == 404
    assert response.headers["x-content-type-options"] == "nosniff"


def test_unknown_api_path_keeps_the_envelope(server) -> None:
    response = httpx.get(server.admin_url + "/api/no-such-route", auth=server.auth)

    assert response.status_code == 404
    assert response.json()["code"] == "NOT_FOUND"


def test_api_routes_still_answer_first(server) -> None:
    health = httpx.get(server.admin_url + "/api/health", auth=server.auth)
    anonymous = httpx.get(server.admin_url + "/api/health")
    wrong_method = httpx.post(server.admin_url + "/api/health", auth=server.auth)

    assert health.json()["status"] == "healthy"
    assert anonymous.status_code == 401
    assert wrong_method.status_code == 405


def test_panel_rejects_other_methods(server) -> None:
    response = httpx.post(server.admin_url + "/index.html")

    assert response.status_code == 405


def test_websocket_upgrade_is_not_the_index(server) -> None:
    # A WebSocket upgrade on / belongs to the event feed, never to the panel
    # route: the response is 101 (feed present) or a refusal, not index.html.
    headers = {
        "Connection": "Upgrade",
        "Upgrade": "websocket",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
    }
    with httpx.Client() as client:
        with client.stream("GET", server.admin_url + "/", headers=headers) as response:
            assert response.status_code != 200
            assert "text/html" not in response.headers.get("content-type", "")


def test_unknown_api_path_is_404_for_any_method(server) -> None:
    response = httpx.post(server.admin_url + "/api/no-such-route", auth=server.auth)

    assert response.status_code == 404
    assert response.json()["details"] == {}


def test_missing_resource_404_has_details(server) -> None:
    # The panel tells "no such route" from "no such resource" by the details.
    response = httpx.get(
        server.admin_url + "/api/modules/no-such-module", auth=server.auth
    )

    assert response.status_code == 404
    assert response.json()["details"] != {}
