"""The modules endpoints over real HTTP, without starting a module's code."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from onestack.modules import MODULE_NAMES, REGISTRY
from tests.support import Server, run_server


def test_list_modules(shared_server: Server) -> None:
    response = shared_server.api("GET", "/api/modules")
    assert response.status_code == 200
    assert response.json() == {"modules": ["http", "https", "dns", "email", "ssh"]}


@pytest.mark.parametrize("name", MODULE_NAMES)
def test_get_module_shape(shared_server: Server, name: str) -> None:
    response = shared_server.api("GET", f"/api/modules/{name}")
    assert response.status_code == 200
    body = response.json()
    assert body["name"] == name
    assert body["running"] is False
    assert body["workers"] == 0
    assert body["customThreads"] == 0
    assert body["config"]["enabled"] is False
    assert body["config"]["host"] == "127.0.0.1"


def test_status_lists_every_module(shared_server: Server) -> None:
    status = shared_server.api("GET", "/api/status").json()
    assert set(status["modules"]) == set(MODULE_NAMES)
    assert set(status["memory"]) == {"heapUsed", "heapTotal", "external", "rss"}
    assert isinstance(status["uptime"], int)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/modules/ftp"),
        ("POST", "/api/modules/ftp/start"),
        ("POST", "/api/modules/ftp/stop"),
        ("POST", "/api/modules/ftp/reload"),
        ("PUT", "/api/modules/ftp/config"),
    ],
)
def test_unknown_module_is_404(shared_server: Server, method: str, path: str) -> None:
    kwargs = {"json": {"port": 1}} if method == "PUT" else {}
    response = shared_server.api(method, path, **kwargs)
    assert response.status_code == 404
    assert response.json()["code"] == "NOT_FOUND"
    assert "ftp" in response.json()["error"]


def test_absent_module_start_is_operation_failed(shared_server: Server) -> None:
    absent = [name for name in MODULE_NAMES if not REGISTRY[name].is_available()]
    if not absent:
        pytest.skip("every module's code is present in this version")
    for action in ("start", "reload"):
        response = shared_server.api("POST", f"/api/modules/{absent[0]}/{action}")
        assert response.status_code == 500
        body = response.json()
        assert body["code"] == "OPERATION_FAILED"
        assert "not available in this version" in body["error"]
        assert body["details"] == {"module": absent[0]}
    assert (
        shared_server.api("GET", f"/api/modules/{absent[0]}").json()["running"] is False
    )


def test_stop_of_stopped_module(shared_server: Server) -> None:
    response = shared_server.api("POST", "/api/modules/ssh/stop")
    assert response.status_code == 200
    assert response.json() == {"success": True, "module": "ssh", "status": "stopped"}


def test_put_module_config_merges(shared_server: Server) -> None:
    response = shared_server.api(
        "PUT", "/api/modules/email/config", json={"smtp": {"maxRecipients": 7}}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["success"] is True
    assert body["config"]["smtp"]["maxRecipients"] == 7
    assert body["config"]["smtp"]["port"] == shared_server.port("email", "smtp.port")
    assert body["config"]["imap"]["port"] == shared_server.port("email", "imap.port")
    stored = json.loads((shared_server.data_dir / "config.json").read_text())
    assert stored["modules"]["email"]["smtp"]["maxRecipients"] == 7
    module = shared_server.api("GET", "/api/modules/email").json()
    assert module["config"]["smtp"]["maxRecipients"] == 7


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"port": "x"}, "modules.dns.port"),
        ({"port": 0}, "modules.dns.port"),
        ({"workers": 65}, "modules.dns.workers"),
        ({"zones": []}, "modules.dns.zones"),
    ],
)
def test_put_module_config_invalid(
    shared_server: Server, body: dict, field: str
) -> None:
    path = shared_server.data_dir / "config.json"
    before = path.read_bytes()
    response = shared_server.api("PUT", "/api/modules/dns/config", json=body)
    assert response.status_code == 400
    assert response.json()["code"] == "INVALID_CONFIG"
    assert response.json()["details"]["field"] == field
    assert path.read_bytes() == before


def test_put_module_config_needs_object(shared_server: Server) -> None:
    response = shared_server.api("PUT", "/api/modules/dns/config", json=[1])
    assert response.status_code == 400
    assert response.json()["code"] == "INVALID_REQUEST"


def test_ssh_module_shows_host_key_fingerprints(server: Server) -> None:
    response = server.api("GET", "/api/modules/ssh")
    assert response.status_code == 200
    host_keys = response.json()["hostKeys"]
    assert set(host_keys) == {"ssh-ed25519", "ssh-rsa"}
    assert all(value.startswith("SHA256:") for value in host_keys.values())
    again = server.api("GET", "/api/modules/ssh").json()["hostKeys"]
    assert again == host_keys


def test_start_on_taken_port_names_the_reason(tmp_path: Path) -> None:
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    port = blocker.getsockname()[1]
    try:
        overrides = {"modules": {"http": {"port": port}}}
        with run_server(tmp_path / "data", overrides) as server:
            response = server.api("POST", "/api/modules/http/start")
            assert response.status_code == 500
            body = response.json()
            assert body["code"] == "OPERATION_FAILED"
            assert "address already in use" in body["error"].lower()
            assert "Error" not in body["error"]
            assert server.api("GET", "/api/modules/http").json()["running"] is False
    finally:
        blocker.close()
