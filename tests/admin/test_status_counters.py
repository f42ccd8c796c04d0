"""GET /api/status carries traffic totals and whether the password is the default."""

from __future__ import annotations

import imaplib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from tests.support import Server, run_server


def wait_for(
    read: Callable[[], Any], check: Callable[[Any], bool], timeout: float = 20
) -> Any:
    deadline = time.monotonic() + timeout
    value = read()
    while not check(value) and time.monotonic() < deadline:
        time.sleep(0.25)
        value = read()
    return value


def test_status_counts_http_requests(tmp_path: Path) -> None:
    overrides = {"modules": {"http": {"enabled": True}}}
    with run_server(tmp_path / "data", overrides) as server:
        server.wait_module("http")
        assert (
            server.api("POST", "/api/vhosts", json={"domain": "count.test"}).status_code
            == 201
        )
        site = f"http://127.0.0.1:{server.port('http')}/"
        deadline = time.monotonic() + 10
        while httpx.get(site, headers={"Host": "count.test"}).status_code != 200:
            assert time.monotonic() < deadline, "the vhost never reached the worker"
            time.sleep(0.1)
        for _ in range(3):
            assert httpx.get(site, headers={"Host": "count.test"}).status_code == 200

        status = wait_for(
            lambda: server.api("GET", "/api/status").json(),
            lambda body: body["counters"]["httpRequests"] >= 4,
        )
        assert status["counters"]["httpRequests"] >= 4
        assert status["counters"]["dnsQueries"] == 0
        assert status["counters"]["mailMessages"] == 0


def test_status_reports_default_password(server: Server) -> None:
    assert server.api("GET", "/api/status").json()["defaultPassword"] is True
    new = "Another-secret-42"
    response = server.api(
        "PUT", "/api/config", json={"server": {"adminPanel": {"password": new}}}
    )
    assert response.status_code == 200
    with httpx.Client(base_url=server.admin_url, auth=("admin", new)) as client:
        assert client.get("/api/status").json()["defaultPassword"] is False
        client.put(
            "/api/config",
            json={"server": {"adminPanel": {"password": "admin123"}}},
        )


def test_imap_connections_counted(tmp_path: Path) -> None:
    overrides = {"modules": {"email": {"enabled": True}}}
    with run_server(tmp_path / "data", overrides) as server:
        server.wait_module("email")
        for _ in range(2):
            connection = imaplib.IMAP4("127.0.0.1", server.port("email", "imap.port"))
            connection.logout()
        stats = wait_for(
            lambda: server.api("GET", "/api/email/stats").json(),
            lambda body: body["imapConnections"] >= 2,
        )
        assert stats["imapConnections"] == 2
