"""The SFTP accounts API over real HTTP, and logins through the worker process."""

from __future__ import annotations

import json
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from onestack.events import socket_path
from tests.ssh.conftest import make_key, ssh_options
from tests.support import Server, run_server


def add_vhost(server: Server, vhost_id: int, root: Path) -> None:
    """Create a vhost through the vhosts API; the tests refer to it by ``vhost_id``."""
    root.mkdir(parents=True, exist_ok=True)
    response = server.api(
        "POST",
        "/api/vhosts",
        json={"domain": f"site{vhost_id}.example", "documentRoot": str(root)},
    )
    assert response.status_code == 201, response.text
    assert response.json()["id"] == vhost_id


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data_dir = tmp_path_factory.mktemp("ssh-api") / "data"
    with run_server(data_dir, {"modules": {"ssh": {"enabled": True}}}) as running:
        add_vhost(running, 1, data_dir.parent / "www1")
        add_vhost(running, 2, data_dir.parent / "www2")
        yield running


def sftp_ls(
    server: Server, username: str, password: str, work: Path
) -> subprocess.CompletedProcess[str]:
    batch = work / "batch"
    batch.write_text("ls\n")
    command = [
        "sshpass",
        "-p",
        password,
        "sftp",
        "-o",
        "BatchMode=no",
        "-b",
        str(batch),
    ]
    command += ssh_options(server.port("ssh")) + ["-o", "PubkeyAuthentication=no"]
    command.append(f"{username}@127.0.0.1")
    return _retry_until_listening(command, work)


def _retry_until_listening(
    command: list[str], work: Path
) -> subprocess.CompletedProcess[str]:
    # The worker may still be starting when the first test runs.
    deadline = time.monotonic() + 20
    while True:
        result = subprocess.run(
            command, cwd=work, capture_output=True, text=True, timeout=60
        )
        if "Connection refused" not in result.stderr or time.monotonic() > deadline:
            return result
        time.sleep(0.2)


class EventTap:
    """Reads events from the supervisor's event hub socket."""

    def __init__(self, server: Server) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(str(socket_path(server.data_dir)))
        self.sock.settimeout(10)
        self.buffer = b""

    def next_of(self, event_type: str) -> dict[str, Any]:
        while True:
            while b"\n" not in self.buffer:
                chunk = self.sock.recv(65536)
                assert chunk, "event hub closed the connection"
                self.buffer += chunk
            line, self.buffer = self.buffer.split(b"\n", 1)
            event = json.loads(line)
            if event["type"] == event_type:
                return event["data"]

    def close(self) -> None:
        self.sock.close()


def test_create_with_generated_password(server: Server, tmp_path: Path) -> None:
    tap = EventTap(server)
    try:
        response = server.api(
            "POST", "/api/ssh/users", json={"username": "carol", "vhostId": 1}
        )
        event = tap.next_of("sshUserCreated")
    finally:
        tap.close()

    assert response.status_code == 201, response.text
    body = response.json()
    assert len(body["password"]) >= 16
    assert body["username"] == "carol"
    assert body["vhostId"] == 1
    assert body["enabled"] is True
    assert body["hasPassword"] is True
    assert body["publicKeys"] == []
    assert event["username"] == "carol"
    assert "password" not in event
    assert "password" not in server.api("GET", "/api/ssh/users/carol").json()
    assert sftp_ls(server, "carol", body["password"], tmp_path).returncode == 0


def test_create_with_keys_only(server: Server, tmp_path: Path) -> None:
    key = make_key(tmp_path)
    public_key = key.with_suffix(".pub").read_text().strip()

    response = server.api(
        "POST",
        "/api/ssh/users",
        json={"username": "dave", "vhostId": 2, "publicKeys": [public_key]},
    )

    assert response.status_code == 201, response.text
    body = response.json()
    assert "password" not in body
    assert body["hasPassword"] is False
    assert body["publicKeys"] == [public_key]

    (tmp_path / "batch").write_text("put batch uploaded.txt\n")
    command = [
        "sftp",
        "-o",
        "BatchMode=no",
        "-b",
        "batch",
        *ssh_options(server.port("ssh")),
    ]
    command += ["-o", "PasswordAuthentication=no", "-i", str(key), "dave@127.0.0.1"]
    result = _retry_until_listening(command, tmp_path)
    assert result.returncode == 0, result.stderr
    assert (
        server.data_dir.parent / "www2" / "uploaded.txt"
    ).read_text() == "put batch uploaded.txt\n"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"username": "Bad", "vhostId": 1}, "username"),
        ({"username": "9lives", "vhostId": 1}, "username"),
        ({"username": "a" * 33, "vhostId": 1}, "username"),
        ({"username": "eve", "vhostId": 99}, "vhostId"),
        ({"username": "eve", "vhostId": 1, "publicKeys": ["not a key"]}, "publicKeys"),
        ({"username": "eve", "vhostId": 1, "password": "short"}, "password"),
        ({"username": "eve", "vhostId": 1, "shell": "/bin/sh"}, "shell"),
        ({"username": "eve"}, "vhostId"),
    ],
)
def test_create_invalid(server: Server, body: dict[str, Any], field: str) -> None:
    response = server.api("POST", "/api/ssh/users", json=body)

    assert response.status_code == 400, response.text
    assert response.json()["code"] == "INVALID_REQUEST"
    assert field in response.json()["error"]


def test_bad_key_named_by_position(server: Server, tmp_path: Path) -> None:
    good = make_key(tmp_path).with_suffix(".pub").read_text().strip()

    response = server.api(
        "POST",
        "/api/ssh/users",
        json={
            "username": "frank",
            "vhostId": 1,
            "publicKeys": [good, "ssh-ed25519 AAAAbroken"],
        },
    )

    assert response.status_code == 400
    assert "publicKeys[1]" in response.json()["error"]


def test_duplicate_username(server: Server) -> None:
    body = {"username": "grace", "vhostId": 1, "password": "long enough password"}
    assert server.api("POST", "/api/ssh/users", json=body).status_code == 201

    response = server.api("POST", "/api/ssh/users", json=body)

    assert response.status_code == 409
    assert response.json()["code"] == "ALREADY_EXISTS"


def test_list_get_update_delete(server: Server, tmp_path: Path) -> None:
    password = "first password here"
    created = server.api(
        "POST",
        "/api/ssh/users",
        json={"username": "heidi", "vhostId": 1, "password": password},
    )
    assert created.status_code == 201
    assert "password" not in created.json()

    names = [user["username"] for user in server.api("GET", "/api/ssh/users").json()]
    assert "heidi" in names
    assert server.api("GET", "/api/ssh/users/heidi").json()["vhostId"] == 1
    assert server.api("GET", "/api/ssh/users/nobody").status_code == 404

    tap = EventTap(server)
    try:
        updated = server.api(
            "PUT", "/api/ssh/users/heidi", json={"enabled": False, "vhostId": 2}
        )
        event = tap.next_of("sshUserUpdated")
    finally:
        tap.close()
    assert updated.status_code == 200, updated.text
    assert updated.json()["success"] is True
    assert updated.json()["user"]["enabled"] is False
    assert updated.json()["user"]["vhostId"] == 2
    assert event["enabled"] is False
    assert sftp_ls(server, "heidi", password, tmp_path).returncode != 0

    new_password = "second password here"
    server.api(
        "PUT", "/api/ssh/users/heidi", json={"enabled": True, "password": new_password}
    )
    assert sftp_ls(server, "heidi", new_password, tmp_path).returncode == 0

    no_credentials = server.api("PUT", "/api/ssh/users/heidi", json={"password": None})
    assert no_credentials.status_code == 400
    assert (
        server.api("PUT", "/api/ssh/users/heidi", json={"vhostId": 99}).status_code
        == 400
    )
    assert (
        server.api("PUT", "/api/ssh/users/nobody", json={"enabled": True}).status_code
        == 404
    )

    tap = EventTap(server)
    try:
        deleted = server.api("DELETE", "/api/ssh/users/heidi")
        event = tap.next_of("sshUserDeleted")
    finally:
        tap.close()
    assert deleted.json() == {"success": True}
    assert event == {"username": "heidi"}
    assert server.api("GET", "/api/ssh/users/heidi").status_code == 404
    assert server.api("DELETE", "/api/ssh/users/heidi").status_code == 404


def test_openapi_lists_ssh_routes(server: Server) -> None:
    paths = server.api("GET", "/api/openapi.json").json()["paths"]

    assert set(paths["/api/ssh/users"]) == {"get", "post"}
    assert set(paths["/api/ssh/users/{username}"]) == {"get", "put", "delete"}
