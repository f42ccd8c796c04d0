"""The config endpoints over real HTTP: read, merge, reload, reset, export, import."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from onestack.config import Config
from tests.support import ROOT, Server


def config_file(shared_server: Server) -> Path:
    return shared_server.data_dir / "config.json"


def test_get_config_redacts_password(shared_server: Server) -> None:
    response = shared_server.api("GET", "/api/config")
    assert response.status_code == 200
    config = response.json()
    admin = config["server"]["adminPanel"]
    assert admin["password"] == "********"
    assert admin["username"] == "admin"
    assert set(config["modules"]) == {"http", "https", "dns", "email", "ssh"}
    assert config["modules"]["email"]["smtp"]["port"] == shared_server.port(
        "email", "smtp.port"
    )
    assert "$argon2" not in response.text


def test_put_deep_merges(shared_server: Server) -> None:
    response = shared_server.api(
        "PUT", "/api/config", json={"modules": {"dns": {"workers": 3}}}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["success"] is True
    dns = body["config"]["modules"]["dns"]
    assert dns["workers"] == 3
    assert dns["port"] == shared_server.port("dns")
    assert dns["host"] == "127.0.0.1"
    assert body["config"]["modules"]["http"]["port"] == shared_server.port("http")
    assert shared_server.api("GET", "/api/config").json() == body["config"]
    stored = json.loads(config_file(shared_server).read_text())
    assert stored["modules"]["dns"]["workers"] == 3
    assert stored["modules"]["dns"]["port"] == shared_server.port("dns")


def test_put_admin_password_is_hashed(shared_server: Server) -> None:
    url = shared_server.admin_url
    new_auth = ("admin", "n3w-Secret!")
    response = shared_server.api(
        "PUT",
        "/api/config",
        json={"server": {"adminPanel": {"password": "n3w-Secret!"}}},
    )
    try:
        assert response.status_code == 200
        redacted = response.json()["config"]["server"]["adminPanel"]["password"]
        assert redacted == "********"
        text = config_file(shared_server).read_text()
        assert "n3w-Secret!" not in text
        stored_hash = json.loads(text)["server"]["adminPanel"]["password"]
        assert stored_hash.startswith("$argon2id$")

        old = httpx.get(url + "/api/health", auth=("admin", "admin123"))
        assert old.status_code == 401
        assert httpx.get(url + "/api/health", auth=new_auth).status_code == 200

        # Sending the redacted placeholder back keeps the stored hash.
        current = httpx.get(url + "/api/config", auth=new_auth).json()
        response = httpx.put(url + "/api/config", json=current, auth=new_auth)
        assert response.status_code == 200
        stored = json.loads(config_file(shared_server).read_text())
        assert stored["server"]["adminPanel"]["password"] == stored_hash

        # An imported file without a password keeps the stored one. The file
        # is otherwise the current config, because an import resets what it
        # leaves out to the defaults (default ports among them).
        exported = httpx.get(url + "/api/config/export", auth=new_auth).json()
        del exported["server"]["adminPanel"]["password"]
        files = {"file": ("partial.json", json.dumps(exported), "application/json")}
        response = httpx.post(url + "/api/config/import", files=files, auth=new_auth)
        assert response.status_code == 200
        stored = json.loads(config_file(shared_server).read_text())
        assert stored["server"]["adminPanel"]["password"] == stored_hash
    finally:
        # Other tests share this server and log in with the default password.
        restore = {"server": {"adminPanel": {"password": "admin123"}}}
        httpx.put(url + "/api/config", json=restore, auth=new_auth)
    assert shared_server.api("GET", "/api/health").status_code == 200


@pytest.mark.parametrize(
    ("update", "field"),
    [
        ({"modules": {"http": {"port": "eighty"}}}, "modules.http.port"),
        ({"modules": {"dns": {"workers": 0}}}, "modules.dns.workers"),
        ({"modules": {"dns": {"colour": "blue"}}}, "modules.dns.colour"),
        ({"server": {"adminPanel": {"username": ""}}}, "server.adminPanel.username"),
        ({"nonsense": 1}, "nonsense"),
    ],
)
def test_put_invalid_changes_nothing(
    shared_server: Server, update: dict[str, Any], field: str
) -> None:
    before = config_file(shared_server).read_bytes()
    response = shared_server.api("PUT", "/api/config", json=update)
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "INVALID_CONFIG"
    assert body["details"]["field"] == field
    assert field in body["error"]
    assert config_file(shared_server).read_bytes() == before


def test_put_malformed_or_non_object_is_400(shared_server: Server) -> None:
    before = config_file(shared_server).read_bytes()
    malformed = shared_server.api(
        "PUT", "/api/config", content=b"{", headers={"Content-Type": "application/json"}
    )
    assert malformed.status_code == 400
    assert malformed.json()["code"] == "INVALID_REQUEST"
    listed = shared_server.api("PUT", "/api/config", json=[1, 2])
    assert listed.status_code == 400
    assert config_file(shared_server).read_bytes() == before


def test_reload_reads_the_file(shared_server: Server) -> None:
    stored = json.loads(config_file(shared_server).read_text())
    stored["modules"]["ssh"]["workers"] = 4
    config_file(shared_server).write_text(json.dumps(stored))
    response = shared_server.api("POST", "/api/config/reload")
    assert response.status_code == 200
    assert response.json()["success"] is True
    assert response.json()["config"]["modules"]["ssh"]["workers"] == 4
    assert shared_server.api("GET", "/api/modules/ssh").json()["config"]["workers"] == 4


def test_reload_invalid_file_keeps_running_config(shared_server: Server) -> None:
    before = shared_server.api("GET", "/api/config").json()
    good = config_file(shared_server).read_bytes()
    config_file(shared_server).write_text('{"modules": {"ssh": {"port": "none"}}}')
    try:
        response = shared_server.api("POST", "/api/config/reload")
    finally:
        config_file(shared_server).write_bytes(good)
    assert response.status_code == 400
    assert response.json()["code"] == "INVALID_CONFIG"
    assert response.json()["details"]["field"] == "modules.ssh.port"
    assert shared_server.api("GET", "/api/config").json() == before


def test_export_is_attachment(shared_server: Server) -> None:
    response = shared_server.api("GET", "/api/config/export")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    disposition = response.headers["content-disposition"]
    assert disposition.startswith("attachment")
    assert 'filename="onestack-config.json"' in disposition
    exported = response.json()
    assert exported == shared_server.api("GET", "/api/config").json()
    assert exported["server"]["adminPanel"]["password"] == "********"


def upload(server: Server, content: bytes, field: str = "file") -> httpx.Response:
    return server.api(
        "POST",
        "/api/config/import",
        files={field: ("config.json", content, "application/json")},
    )


def test_import_applies_file_and_keeps_password(shared_server: Server) -> None:
    exported = shared_server.api("GET", "/api/config/export").json()
    exported["modules"]["dns"]["workers"] = 2
    exported["modules"]["https"]["acme"]["email"] = "ops@example.com"
    response = upload(shared_server, json.dumps(exported).encode())
    assert response.status_code == 200
    body = response.json()
    assert body["success"] is True
    assert body["config"]["modules"]["dns"]["workers"] == 2
    assert body["config"]["modules"]["https"]["acme"]["email"] == "ops@example.com"
    assert body["config"]["server"]["adminPanel"]["password"] == "********"
    # The redacted password in the file kept the stored one.
    assert shared_server.api("GET", "/api/health").status_code == 200
    stored = json.loads(config_file(shared_server).read_text())
    assert stored["modules"]["dns"]["workers"] == 2


@pytest.mark.parametrize(
    ("content", "field"),
    [
        (b"not json at all", "file"),
        (b"\xff\xfe\x00", "file"),
        (b"[1, 2, 3]", "file"),
        (b'{"modules": {"http": {"port": 70000}}}', "modules.http.port"),
        (b'{"modules": {"http": {"colour": "red"}}}', "modules.http.colour"),
        (
            b'{"server": {"adminPanel": {"password": ""}}}',
            "server.adminPanel.password",
        ),
        (b'{"server": "x"}', "server"),
        (b'{"server": {"adminPanel": 5}}', "server.adminPanel"),
    ],
)
def test_invalid_import_changes_nothing(
    shared_server: Server, content: bytes, field: str
) -> None:
    before_file = config_file(shared_server).read_bytes()
    before = shared_server.api("GET", "/api/config").json()
    response = upload(shared_server, content)
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "INVALID_CONFIG"
    assert body["details"]["field"] == field
    assert config_file(shared_server).read_bytes() == before_file
    assert shared_server.api("GET", "/api/config").json() == before


def test_import_without_file_field_is_400(shared_server: Server) -> None:
    response = upload(shared_server, b"{}", field="upload")
    assert response.status_code == 400
    assert response.json()["details"]["field"] == "file"


# The reset restores the default module listeners (for example http on
# 0.0.0.0:8080). Tests must not bind default ports on the shared machine, so
# this one runs the server and its client in a private network namespace.
RESET_SCRIPT = """
import json, sys
from pathlib import Path
import httpx
from tests.support import run_server
overrides = {"modules": {"dns": {"workers": 5}}}
with run_server(Path(sys.argv[1]), overrides) as server:
    server.api("PUT", "/api/config", json={"server": {"adminPanel": {"password": "kept-Secret1"}}})
    auth = ("admin", "kept-Secret1")
    response = httpx.post(server.admin_url + "/api/config/reset", auth=auth, timeout=60)
    stored = json.loads((server.data_dir / "config.json").read_text())
    health = httpx.get(server.admin_url + "/api/health", auth=auth).status_code
    print(json.dumps({"status": response.status_code, "body": response.json(),
                      "stored": stored, "health": health,
                      "adminPort": server.config["server"]["adminPanel"]["port"]}))
"""


def test_reset_restores_defaults_keeps_password(tmp_path: Path) -> None:
    probe = subprocess.run(["unshare", "-rn", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip("unshare -rn (user and network namespaces) is not permitted here")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    result = subprocess.run(
        [
            "unshare",
            "-rn",
            "sh",
            "-c",
            'ip link set lo up && exec "$0" -c "$1" "$2"',
            sys.executable,
            RESET_SCRIPT,
            str(tmp_path / "data"),
        ],
        capture_output=True,
        cwd=ROOT,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr.decode(errors="replace")[-3000:]
    outcome = json.loads(result.stdout.decode().strip().splitlines()[-1])
    defaults = Config().model_dump(mode="json")
    body = outcome["body"]
    assert outcome["status"] == 200, body
    config = body["config"]
    assert config["modules"] == defaults["modules"]
    assert outcome["stored"]["modules"] == defaults["modules"]
    # The admin panel section stays: its listener and the new password.
    assert config["server"]["adminPanel"]["port"] == outcome["adminPort"]
    assert outcome["stored"]["server"]["adminPanel"]["password"].startswith(
        "$argon2id$"
    )
    assert outcome["health"] == 200
