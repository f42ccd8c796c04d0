"""onestack.client against a real server, and the requests it sends for each method."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from onestack.client import OneStackClient, OneStackError
from tests.support import ADMIN_PASSWORD, ADMIN_USER, Server


@pytest.fixture(scope="module")
def client(shared_server: Server) -> OneStackClient:
    return OneStackClient(shared_server.admin_url, ADMIN_USER, ADMIN_PASSWORD)


def test_health_and_status(client: OneStackClient) -> None:
    assert client.health()["status"] == "healthy"
    assert set(client.status()["modules"]) == {"http", "https", "dns", "email", "ssh"}


def test_vhost_round_trip(client: OneStackClient) -> None:
    created = client.create_vhost("client.example", aliases=["www.client.example"])
    assert created["domain"] == "client.example"
    assert client.get_vhost(created["id"])["aliases"] == ["www.client.example"]
    assert any(v["id"] == created["id"] for v in client.list_vhosts())
    updated = client.update_vhost(created["id"], enabled=False)
    assert updated["vhost"]["enabled"] is False
    assert client.vhost_stats(created["id"])["requests"] == 0
    assert client.delete_vhost(created["id"], delete_files=True) == {"success": True}
    with pytest.raises(OneStackError) as error:
        client.get_vhost(created["id"])
    assert error.value.status == 404
    assert error.value.code == "NOT_FOUND"


def test_error_carries_code_and_details(client: OneStackClient) -> None:
    client.create_vhost("dup.client.example")
    with pytest.raises(OneStackError) as error:
        client.create_vhost("dup.client.example")
    assert error.value.status == 409
    assert error.value.code == "ALREADY_EXISTS"
    assert error.value.details == {"field": "domain"}
    assert "dup.client.example" in error.value.message


def test_wrong_password_is_auth_failed(shared_server: Server) -> None:
    with pytest.raises(OneStackError) as error:
        OneStackClient(shared_server.admin_url, ADMIN_USER, "wrong").health()
    assert error.value.status == 401
    assert error.value.code == "AUTH_FAILED"


def test_config_methods(client: OneStackClient) -> None:
    config = client.get_config()
    assert config["server"]["adminPanel"]["password"] == "********"
    assert client.export_config() == config
    with pytest.raises(OneStackError) as error:
        client.update_config({"modules": {"dns": {"port": -1}}})
    assert error.value.code == "INVALID_CONFIG"
    assert error.value.details["field"] == "modules.dns.port"
    with pytest.raises(OneStackError) as error:
        client.import_config(b"{not json")
    assert error.value.code == "INVALID_CONFIG"
    assert error.value.details["field"] == "file"
    imported = client.import_config(config)
    assert imported["config"] == config
    assert client.reload_config()["config"] == config


def test_module_methods(client: OneStackClient) -> None:
    assert client.list_modules() == ["http", "https", "dns", "email", "ssh"]
    assert client.get_module("ssh")["name"] == "ssh"
    assert client.stop_module("ssh")["status"] == "stopped"
    answer = client.update_module_config("ssh", {"maxSessionsPerUser": 3})
    assert answer["config"]["maxSessionsPerUser"] == 3
    with pytest.raises(OneStackError) as error:
        client.start_module("nope")
    assert error.value.status == 404


class Recorder(BaseHTTPRequestHandler):
    """An HTTP handler that records each request and sends a fixed JSON body."""

    requests: list[dict[str, Any]] = []

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        Recorder.requests.append(
            {
                "method": self.command,
                "path": self.path,
                "body": body,
                "contentType": self.headers.get("Content-Type"),
                "authorization": self.headers.get("Authorization"),
            }
        )
        if self.path.endswith("/export") and "/dns/" in self.path:
            payload, content_type = b"$ORIGIN example.com.\n", "text/plain"
        else:
            payload, content_type = b'{"modules": []}', "application/json"
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_DELETE = _handle

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def recorder_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def recorder(recorder_url: str) -> str:
    Recorder.requests = []
    return recorder_url


# Each client method with the method, path and JSON body the API contract gives.
CALLS: list[tuple[str, tuple[Any, ...], dict[str, Any], str, str, Any]] = [
    ("status", (), {}, "GET", "/api/status", None),
    ("health", (), {}, "GET", "/api/health", None),
    ("get_config", (), {}, "GET", "/api/config", None),
    ("update_config", ({"modules": {}},), {}, "PUT", "/api/config", {"modules": {}}),
    ("reload_config", (), {}, "POST", "/api/config/reload", None),
    ("reset_config", (), {}, "POST", "/api/config/reset", None),
    ("export_config", (), {}, "GET", "/api/config/export", None),
    ("get_module", ("http",), {}, "GET", "/api/modules/http", None),
    ("start_module", ("http",), {}, "POST", "/api/modules/http/start", None),
    ("stop_module", ("http",), {}, "POST", "/api/modules/http/stop", None),
    ("reload_module", ("http",), {}, "POST", "/api/modules/http/reload", None),
    (
        "update_module_config",
        ("http", {"port": 8081}),
        {},
        "PUT",
        "/api/modules/http/config",
        {"port": 8081},
    ),
    ("list_vhosts", (), {}, "GET", "/api/vhosts", None),
    ("get_vhost", (3,), {}, "GET", "/api/vhosts/3", None),
    (
        "create_vhost",
        ("a.example",),
        {"enabled": True},
        "POST",
        "/api/vhosts",
        {"domain": "a.example", "enabled": True},
    ),
    ("update_vhost", (3,), {"ssl": True}, "PUT", "/api/vhosts/3", {"ssl": True}),
    ("delete_vhost", (3,), {}, "DELETE", "/api/vhosts/3", None),
    (
        "delete_vhost",
        (3,),
        {"delete_files": True},
        "DELETE",
        "/api/vhosts/3?deleteFiles=true",
        None,
    ),
    ("vhost_stats", (3,), {}, "GET", "/api/vhosts/3/stats", None),
    ("list_zones", (), {}, "GET", "/api/dns/zones", None),
    ("get_zone", ("example.com",), {}, "GET", "/api/dns/zones/example.com", None),
    (
        "create_zone",
        ("example.com",),
        {"ttl": 3600, "primaryNS": "ns1.example.com"},
        "POST",
        "/api/dns/zones",
        {
            "name": "example.com",
            "options": {"ttl": 3600, "primaryNS": "ns1.example.com"},
        },
    ),
    (
        "update_zone",
        ("example.com",),
        {"ttl": 7200},
        "PUT",
        "/api/dns/zones/example.com",
        {"ttl": 7200},
    ),
    ("delete_zone", ("example.com",), {}, "DELETE", "/api/dns/zones/example.com", None),
    (
        "list_records",
        ("example.com",),
        {},
        "GET",
        "/api/dns/zones/example.com/records",
        None,
    ),
    (
        "add_record",
        ("example.com", "@", "MX", "mail.example.com."),
        {"ttl": 300, "priority": 10},
        "POST",
        "/api/dns/zones/example.com/records",
        {
            "name": "@",
            "type": "MX",
            "data": "mail.example.com.",
            "ttl": 300,
            "priority": 10,
        },
    ),
    (
        "update_record",
        (9,),
        {"data": "192.0.2.9"},
        "PUT",
        "/api/dns/records/9",
        {"data": "192.0.2.9"},
    ),
    ("delete_record", (9,), {}, "DELETE", "/api/dns/records/9", None),
    (
        "import_zone",
        ("example.com", "$TTL 60\n"),
        {},
        "POST",
        "/api/dns/zones/example.com/import",
        {"zoneFile": "$TTL 60\n"},
    ),
    ("list_mailboxes", (), {}, "GET", "/api/mailboxes", None),
    (
        "get_mailbox",
        ("u@example.com",),
        {},
        "GET",
        "/api/mailboxes/u%40example.com",
        None,
    ),
    (
        "create_mailbox",
        ("u@example.com",),
        {"quota": 1024},
        "POST",
        "/api/mailboxes",
        {"email": "u@example.com", "quota": 1024},
    ),
    (
        "update_mailbox",
        ("u@example.com",),
        {"enabled": False},
        "PUT",
        "/api/mailboxes/u%40example.com",
        {"enabled": False},
    ),
    (
        "delete_mailbox",
        ("u@example.com",),
        {"delete_messages": True},
        "DELETE",
        "/api/mailboxes/u%40example.com?deleteMessages=true",
        None,
    ),
    (
        "mailbox_stats",
        ("u@example.com",),
        {},
        "GET",
        "/api/mailboxes/u%40example.com/stats",
        None,
    ),
    (
        "list_messages",
        ("u@example.com",),
        {"folder": "inbox", "unread_only": True, "limit": 5, "offset": 10},
        "GET",
        "/api/mailboxes/u%40example.com/messages?folder=inbox&unreadOnly=true&limit=5&offset=10",
        None,
    ),
    ("get_message", (4,), {}, "GET", "/api/messages/4", None),
    (
        "mark_message_read",
        (4,),
        {"read": False},
        "PUT",
        "/api/messages/4/read",
        {"read": False},
    ),
    (
        "move_message",
        (4, "trash"),
        {},
        "PUT",
        "/api/messages/4/move",
        {"folder": "trash"},
    ),
    ("delete_message", (4,), {}, "DELETE", "/api/messages/4", None),
    (
        "send_email",
        ("a@example.com", "b@example.com", "Hi", "Body"),
        {"html": "<p>Body</p>"},
        "POST",
        "/api/send-email",
        {
            "from": "a@example.com",
            "to": "b@example.com",
            "subject": "Hi",
            "body": "Body",
            "html": "<p>Body</p>",
        },
    ),
    ("email_stats", (), {}, "GET", "/api/email/stats", None),
    ("list_ssh_users", (), {}, "GET", "/api/ssh/users", None),
    ("get_ssh_user", ("alice",), {}, "GET", "/api/ssh/users/alice", None),
    (
        "create_ssh_user",
        ("alice", 3),
        {"password": "pw"},
        "POST",
        "/api/ssh/users",
        {"username": "alice", "vhostId": 3, "password": "pw"},
    ),
    (
        "update_ssh_user",
        ("alice",),
        {"enabled": False},
        "PUT",
        "/api/ssh/users/alice",
        {"enabled": False},
    ),
    ("delete_ssh_user", ("alice",), {}, "DELETE", "/api/ssh/users/alice", None),
]


@pytest.mark.parametrize(
    ("method_name", "args", "kwargs", "http_method", "path", "body"),
    CALLS,
    ids=[f"{call[0]}-{index}" for index, call in enumerate(CALLS)],
)
def test_request_for_each_method(
    recorder: str,
    method_name: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    http_method: str,
    path: str,
    body: Any,
) -> None:
    client = OneStackClient(recorder + "/", "admin", "admin123")
    getattr(client, method_name)(*args, **kwargs)
    [sent] = Recorder.requests
    assert sent["method"] == http_method
    assert sent["path"] == path
    assert sent["authorization"] == "Basic YWRtaW46YWRtaW4xMjM="
    if body is None:
        assert sent["body"] == b""
    else:
        assert sent["contentType"] == "application/json"
        assert json.loads(sent["body"]) == body


def test_export_zone_returns_text(recorder: str) -> None:
    text = OneStackClient(recorder, "admin", "admin123").export_zone("example.com")
    assert text == "$ORIGIN example.com.\n"
    assert Recorder.requests[0]["path"] == "/api/dns/zones/example.com/export"


def test_import_config_is_multipart(recorder: str) -> None:
    OneStackClient(recorder, "admin", "admin123").import_config({"modules": {}})
    [sent] = Recorder.requests
    assert sent["path"] == "/api/config/import"
    assert sent["contentType"].startswith("multipart/form-data; boundary=")
    assert b'name="file"; filename="config.json"' in sent["body"]
    assert b'{"modules": {}}' in sent["body"]


def test_every_public_method_is_covered() -> None:
    public = {name for name in dir(OneStackClient) if not name.startswith("_")} - {
        "request"
    }
    covered = {call[0] for call in CALLS} | {
        "export_zone",
        "import_config",
        "list_modules",
    }
    assert public == covered
