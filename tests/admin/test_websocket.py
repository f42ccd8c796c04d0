"""The WebSocket feed on the admin port: the three ways to log in, and events."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from onestack.admin.websocket import MAX_QUEUED_MESSAGES, FeedClient
from tests.support import Server


def ws_url(server: Server, credentials: str = "", query: str = "") -> str:
    port = server.config["server"]["adminPanel"]["port"]
    userinfo = f"{credentials}@" if credentials else ""
    return f"ws://{userinfo}127.0.0.1:{port}/{query}"


def receive(ws: ClientConnection, timeout: float = 15.0) -> dict[str, Any]:
    return json.loads(ws.recv(timeout=timeout))


def receive_type(
    ws: ClientConnection, wanted: str, timeout: float = 15.0
) -> dict[str, Any]:
    """Return the next message of type ``wanted``, skipping status ticks and others."""
    deadline = time.monotonic() + timeout
    while True:
        message = receive(ws, max(0.1, deadline - time.monotonic()))
        if message["type"] == wanted:
            return message


def close_of(ws: ClientConnection) -> tuple[int, str]:
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            ws.recv(timeout=20)
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code, closed.value.rcvd.reason


def test_auth_by_url_credentials(shared_server: Server) -> None:
    with connect(ws_url(shared_server, "admin:admin123")) as ws:
        message = receive(ws)
    assert message["type"] == "status"
    assert set(message["data"]) == {
        "uptime",
        "memory",
        "modules",
        "counters",
        "defaultPassword",
    }


def test_auth_by_header(shared_server: Server) -> None:
    headers = {"Authorization": shared_server.basic_header}
    with connect(ws_url(shared_server), additional_headers=headers) as ws:
        assert receive(ws)["type"] == "status"


def test_auth_by_query(shared_server: Server) -> None:
    with connect(
        ws_url(shared_server, query="?username=admin&password=admin123")
    ) as ws:
        assert receive(ws)["type"] == "status"
    # uvicorn logs the request line with its query; the password is redacted.
    log = shared_server.log()
    assert "password=admin123" not in log
    assert "password=********" in log


def test_auth_by_first_message(shared_server: Server) -> None:
    with connect(ws_url(shared_server)) as ws:
        ws.send(
            json.dumps({"type": "auth", "username": "admin", "password": "admin123"})
        )
        ack = receive(ws)
        assert ack == {"type": "auth", "data": {"success": True, "username": "admin"}}
        assert receive(ws)["type"] == "status"


@pytest.mark.parametrize(
    ("credentials", "query", "first_message"),
    [
        ("admin:wrong", "", None),
        ("", "?username=admin&password=wrong", None),
        ("", "", {"type": "auth", "username": "admin", "password": "wrong"}),
    ],
)
def test_wrong_password_is_closed(
    shared_server: Server,
    credentials: str,
    query: str,
    first_message: dict[str, str] | None,
) -> None:
    with connect(ws_url(shared_server, credentials, query)) as ws:
        if first_message is not None:
            ws.send(json.dumps(first_message))
        code, reason = close_of(ws)
    assert code == 1008
    assert reason == "invalid username or password"


def test_first_message_must_be_auth(shared_server: Server) -> None:
    with connect(ws_url(shared_server)) as ws:
        ws.send(json.dumps({"type": "subscribe"}))
        code, reason = close_of(ws)
    assert code == 1008
    assert reason.startswith("authentication required")


def test_silent_socket_closed_after_timeout(shared_server: Server) -> None:
    started = time.monotonic()
    with connect(ws_url(shared_server)) as ws:
        code, reason = close_of(ws)
    assert code == 1008
    assert reason.startswith("authentication timed out")
    # The server waits its full 10 s before giving up; only the lower bound
    # is checked, because a loaded machine may take longer.
    assert time.monotonic() - started >= 9.5


def test_events_reach_the_socket(shared_server: Server) -> None:
    with connect(ws_url(shared_server, "admin:admin123")) as ws:
        receive_type(ws, "status")

        created = shared_server.api(
            "POST", "/api/vhosts", json={"domain": "events.example"}
        ).json()
        event = receive_type(ws, "vhostCreated")
        assert event["data"]["id"] == created["id"]
        assert event["data"]["domain"] == "events.example"

        shared_server.api(
            "PUT", f"/api/vhosts/{created['id']}", json={"enabled": False}
        )
        event = receive_type(ws, "vhostUpdated")
        assert event["data"]["id"] == created["id"]
        assert event["data"]["enabled"] is False

        shared_server.api("DELETE", f"/api/vhosts/{created['id']}")
        event = receive_type(ws, "vhostDeleted")
        assert event["data"]["id"] == created["id"]

        shared_server.api("PUT", "/api/modules/ssh/config", json={"idleTimeout": 300})
        event = receive_type(ws, "configUpdated")
        assert event["data"]["modules"]["ssh"]["idleTimeout"] == 300
        assert event["data"]["server"]["adminPanel"]["password"] == "********"

        shared_server.api("POST", "/api/modules/ssh/stop")
        event = receive_type(ws, "moduleStopped")
        assert event["data"] == {"module": "ssh", "status": "stopped"}


def test_status_repeats(shared_server: Server) -> None:
    with connect(ws_url(shared_server, "admin:admin123")) as ws:
        assert receive(ws)["type"] == "status"
        # The ticker runs every 5 s; allow a loaded machine plenty more.
        assert (
            receive_type(ws, "status", timeout=20)["data"]["modules"]["http"]["running"]
            is False
        )


async def test_slow_client_queue_is_bounded() -> None:
    client = FeedClient()
    for index in range(MAX_QUEUED_MESSAGES):
        client.offer(f"message {index}")
    assert not client.overflowed.is_set()
    assert client.queue.qsize() == MAX_QUEUED_MESSAGES
    client.offer("one too many")
    assert client.overflowed.is_set()
    assert client.queue.qsize() == 0
    client.offer("after overflow")
    assert client.queue.qsize() == 0
    await asyncio.sleep(0)
