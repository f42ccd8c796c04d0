"""Authentication on every route, login throttling, request rate and body limits."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.support import Server, run_server


def concrete(path: str) -> str:
    """Fill the path parameters of an OpenAPI path with plausible values."""
    return re.sub(r"\{[^}]+\}", "1", path)


def test_every_route_requires_auth(shared_server: Server) -> None:
    document = shared_server.api("GET", "/api/openapi.json").json()
    routes = [
        (method.upper(), concrete(path))
        for path, operations in document["paths"].items()
        for method in operations
    ]
    routes += [("GET", "/api/openapi.json"), ("GET", "/api/docs")]
    assert len(routes) > 20
    for method, path in routes:
        response = httpx.request(method, shared_server.admin_url + path)
        assert response.status_code == 401, (method, path)
        assert response.json()["code"] == "AUTH_REQUIRED", (method, path)
        assert response.headers["www-authenticate"] == 'Basic realm="OneStack"'


def test_openapi_document_and_docs(shared_server: Server) -> None:
    document = shared_server.api("GET", "/api/openapi.json")
    assert document.status_code == 200
    paths = document.json()["paths"]
    for path in (
        "/api/config",
        "/api/config/import",
        "/api/modules/{name}/start",
        "/api/vhosts/{vhost_id}/stats",
    ):
        assert path in paths
    docs = shared_server.api("GET", "/api/docs")
    assert docs.status_code == 200
    assert "/api/openapi.json" in docs.text


def test_garbled_authorization_is_401(shared_server: Server) -> None:
    for header in ("Basic !!!", "Bearer abc", "Basic YWRtaW4="):
        response = httpx.get(
            shared_server.admin_url + "/api/health", headers={"Authorization": header}
        )
        assert response.status_code == 401, header


@pytest.fixture
def throttled_server(tmp_path) -> Iterator[Server]:  # type: ignore[no-untyped-def]
    limits = {
        "failedLoginsBeforeDelay": 100,
        "failedLoginsBeforeBlock": 100,
        "blockSeconds": 120,
    }
    overrides = {"server": {"adminPanel": {"rateLimit": limits}}}
    with run_server(tmp_path / "data", overrides) as running:
        yield running


def test_failed_logins_lead_to_429(throttled_server: Server) -> None:
    # The server starts with a block after 100 failures; lowering it through
    # the API shows that a policy change applies without a restart.
    limits = {"failedLoginsBeforeBlock": 3}
    update = {"server": {"adminPanel": {"rateLimit": limits}}}
    assert throttled_server.api("PUT", "/api/config", json=update).status_code == 200
    url = throttled_server.admin_url + "/api/health"
    for _ in range(3):
        response = httpx.get(url, auth=("admin", "guess"))
        assert response.status_code == 401
        assert response.json()["code"] == "AUTH_FAILED"
    blocked = httpx.get(url, auth=("admin", "guess"))
    assert blocked.status_code == 429
    retry_after = int(blocked.headers["retry-after"])
    assert 0 < retry_after <= 120
    assert blocked.json()["details"]["retryAfter"] == retry_after
    # While blocked, even the right password is turned away.
    assert httpx.get(url, auth=("admin", "admin123")).status_code == 429
    assert "login blocked for ip:127.0.0.1" in throttled_server.log()

    # The WebSocket shares the throttle.
    port = throttled_server.config["server"]["adminPanel"]["port"]
    with connect(f"ws://admin:admin123@127.0.0.1:{port}/") as ws:
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1008
    assert "too many failed logins" in closed.value.rcvd.reason


def test_request_rate_limit(tmp_path) -> None:  # type: ignore[no-untyped-def]
    overrides = {"server": {"adminPanel": {"rateLimit": {"requestsPerMinute": 30}}}}
    with run_server(tmp_path / "data", overrides) as server:
        statuses = []
        with server.client() as client:
            for _ in range(60):
                response = client.get("/api/health")
                statuses.append(response.status_code)
                if response.status_code == 429:
                    break
        assert statuses[-1] == 429
        assert 200 in statuses
        assert int(response.headers["retry-after"]) >= 1
        assert response.json()["code"] == "RATE_LIMITED"


@pytest.fixture(scope="module")
def small_body_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    overrides = {"server": {"adminPanel": {"maxBodyBytes": 2048}}}
    with run_server(tmp_path_factory.mktemp("small") / "data", overrides) as running:
        yield running


def test_oversized_body_is_413(small_body_server: Server) -> None:
    body = json.dumps(
        {
            "domain": "big.example",
            "aliases": ["a" * 50 + f".x{i}.example" for i in range(60)],
        }
    )
    response = small_body_server.api(
        "POST",
        "/api/vhosts",
        content=body,
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert response.json()["details"]["maxBodyBytes"] == 2048
    assert small_body_server.api("GET", "/api/vhosts").json() == []


def test_oversized_chunked_body_is_413(small_body_server: Server) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"domain": "chunked.example", "aliases": ['
        for i in range(100):
            yield f'"alias{i}.chunked.example",'.encode()
        yield b'"last.chunked.example"]}'

    response = small_body_server.api(
        "POST",
        "/api/vhosts",
        content=chunks(),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert small_body_server.api("GET", "/api/vhosts").json() == []
