"""`onestack serve` as a user starts it: a subprocess on free loopback ports."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from tests.support import Server, run_server


def test_health_answers_with_credentials(server: Server) -> None:
    response = server.api("GET", "/api/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "healthy"
    assert body["timestamp"].endswith("Z")


def test_health_requires_auth(server: Server) -> None:
    response = httpx.get(server.admin_url + "/api/health")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Basic realm="OneStack"'
    assert response.json()["code"] == "AUTH_REQUIRED"


def test_wrong_password_is_auth_failed(server: Server) -> None:
    response = httpx.get(server.admin_url + "/api/health", auth=("admin", "wrong"))
    assert response.status_code == 401
    assert response.json()["code"] == "AUTH_FAILED"


def test_config_file_written_with_hashed_password(server: Server) -> None:
    stored = json.loads((server.data_dir / "config.json").read_text())
    password = stored["server"]["adminPanel"]["password"]
    assert password.startswith("$argon2id$")
    assert "admin123" not in (server.data_dir / "config.json").read_text()


def test_invalid_config_stops_startup(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "config.json").write_text(
        json.dumps({"modules": {"http": {"port": "eighty"}}})
    )
    with run_server(data_dir, wait=False) as running:
        code = running.process.wait(30)
    assert code != 0
    assert "modules.http.port" in running.log()


def test_sigterm_stops_within_ten_seconds(tmp_path: Path) -> None:
    with run_server(tmp_path / "data") as running:
        code = running.stop(timeout=10)
    assert code == 0
