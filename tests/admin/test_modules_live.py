"""Module control through the API with the real http module in worker processes.

One server runs the http module with two workers. The tests kill a worker,
reload and stop the module, change its config, and check that vhost changes
made through the API reach every worker.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import psutil
import pytest
from websockets.sync.client import ClientConnection, connect

from onestack.modules import REGISTRY
from tests.admin.test_reference_clients import CLIENTS, PYTHON_DRIVER, node_20
from tests.support import ADMIN_PASSWORD, ADMIN_USER, Server, free_port, run_server

pytestmark = pytest.mark.skipif(
    not REGISTRY["http"].is_available(), reason="the http module is not in this version"
)

T = TypeVar("T")

# Enough fresh connections that SO_REUSEPORT spreads them over both workers:
# the chance that all land on one of two workers is 2**-39.
CONNECTIONS = 40


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    overrides = {"modules": {"http": {"enabled": True, "workers": 2}}}
    data_dir = tmp_path_factory.mktemp("live") / "data"
    with run_server(data_dir, overrides) as running:
        running.wait_module("http", running=True)
        yield running


def eventually(check: Callable[[], T], timeout: float = 15.0) -> T:
    """Return the first truthy result of ``check``, polling until ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.05)


def get(port: int, host: str, path: str = "/") -> tuple[int, bytes]:
    """GET over a new connection, so that each request may reach another worker."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", path, headers={"Host": host, "Connection": "close"})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def statuses(server: Server, host: str) -> set[int]:
    port = server.port("http")
    return {get(port, host)[0] for _ in range(CONNECTIONS)}


def worker_pids(server: Server) -> set[int]:
    children = psutil.Process(server.process.pid).children()
    return {
        child.pid
        for child in children
        if child.is_running() and "onestack.worker" in " ".join(child.cmdline())
    }


def ws_connect(server: Server) -> ClientConnection:
    port = server.config["server"]["adminPanel"]["port"]
    return connect(f"ws://{ADMIN_USER}:{ADMIN_PASSWORD}@127.0.0.1:{port}/")


def receive_type(
    ws: ClientConnection, wanted: str, timeout: float = 30.0
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        message = json.loads(ws.recv(timeout=max(0.1, deadline - time.monotonic())))
        if message["type"] == wanted:
            return message


def test_module_reports_two_workers(server: Server) -> None:
    status = server.api("GET", "/api/modules/http").json()
    assert status["running"] is True
    assert status["workers"] == 2
    assert len(worker_pids(server)) == 2


def test_vhost_changes_reach_every_worker(server: Server) -> None:
    created = server.api(
        "POST",
        "/api/vhosts",
        json={"domain": "live.example", "aliases": ["www.live.example"]},
    ).json()
    assert eventually(lambda: statuses(server, "live.example") == {200})
    status, body = get(server.port("http"), "WWW.Live.Example.:80")
    assert status == 200
    assert b"live.example" in body

    server.api("PUT", f"/api/vhosts/{created['id']}", json={"enabled": False})
    assert eventually(lambda: statuses(server, "live.example") == {404})

    server.api(
        "PUT",
        f"/api/vhosts/{created['id']}",
        json={"enabled": True, "aliases": ["blog.live.example"]},
    )
    assert eventually(lambda: statuses(server, "blog.live.example") == {200})
    assert statuses(server, "www.live.example") == {404}

    server.api("DELETE", f"/api/vhosts/{created['id']}")
    assert eventually(lambda: statuses(server, "live.example") == {404})


def test_killed_worker_comes_back(server: Server) -> None:
    before = worker_pids(server)
    assert len(before) == 2
    victim = min(before)
    with ws_connect(server) as ws:
        receive_type(ws, "status")
        os.kill(victim, signal.SIGKILL)
        event = receive_type(ws, "workerRestarted")
    assert event["data"]["module"] == "http"
    assert event["data"]["pid"] == victim
    assert event["data"]["exitCode"] == -signal.SIGKILL

    def replaced() -> bool:
        pids = worker_pids(server)
        status = server.api("GET", "/api/modules/http").json()
        return len(pids) == 2 and victim not in pids and status["workers"] == 2

    assert eventually(replaced, timeout=30)
    assert server.api("GET", "/api/modules/http").json()["running"] is True
    assert "restarting in" in server.log()


def test_reload_refuses_no_connection(server: Server) -> None:
    server.api("POST", "/api/vhosts", json={"domain": "reload.example"})
    assert eventually(lambda: statuses(server, "reload.example") == {200})
    port = server.port("http")
    failures: list[str] = []
    served = 0
    done = threading.Event()

    def hammer() -> None:
        nonlocal served
        # Bounded by count as well as by the reload finishing.
        for _ in range(20_000):
            if done.is_set():
                return
            try:
                status, _body = get(port, "reload.example")
            except OSError as exc:
                failures.append(repr(exc))
                continue
            if status != 200:
                failures.append(f"status {status}")
            served += 1

    before = worker_pids(server)
    thread = threading.Thread(target=hammer)
    thread.start()
    try:
        time.sleep(0.3)
        response = server.api("POST", "/api/modules/http/reload")
        time.sleep(0.3)
    finally:
        done.set()
        thread.join(60)
    assert response.status_code == 200
    assert response.json() == {"success": True, "module": "http", "status": "running"}
    assert failures == []
    assert served > 0
    after = worker_pids(server)
    assert len(after) == 2
    assert after.isdisjoint(before)


def test_config_change_applies_live(server: Server) -> None:
    old_port = server.port("http")
    new_port = free_port()
    response = server.api(
        "PUT", "/api/modules/http/config", json={"port": new_port, "workers": 3}
    )
    assert response.status_code == 200
    assert response.json()["config"]["port"] == new_port
    try:
        status = server.api("GET", "/api/modules/http").json()
        assert status["running"] is True
        assert status["workers"] == 3
        assert len(worker_pids(server)) == 3
        server.api("POST", "/api/vhosts", json={"domain": "port.example"})
        assert eventually(lambda: get(new_port, "port.example")[0] == 200)
        with pytest.raises(ConnectionRefusedError):
            get(old_port, "port.example")
    finally:
        server.api(
            "PUT", "/api/modules/http/config", json={"port": old_port, "workers": 2}
        )
    assert server.api("GET", "/api/modules/http").json()["workers"] == 2


def test_stop_frees_the_port_and_start_serves_again(server: Server) -> None:
    port = server.port("http")
    with ws_connect(server) as ws:
        receive_type(ws, "status")
        response = server.api("POST", "/api/modules/http/stop")
        event = receive_type(ws, "moduleStopped")
    assert response.json() == {"success": True, "module": "http", "status": "stopped"}
    assert event["data"] == {"module": "http", "status": "stopped"}
    status = server.api("GET", "/api/modules/http").json()
    assert status["running"] is False
    assert status["workers"] == 0
    assert worker_pids(server) == set()

    # SO_REUSEADDR ignores connections left in TIME_WAIT, but a bind still
    # fails while any socket listens on the port.
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        probe.bind(("127.0.0.1", port))
        probe.listen()
    finally:
        probe.close()

    with ws_connect(server) as ws:
        receive_type(ws, "status")
        response = server.api("POST", "/api/modules/http/start")
        event = receive_type(ws, "moduleStarted")
    assert response.json() == {"success": True, "module": "http", "status": "running"}
    assert event["data"] == {"module": "http", "status": "running"}
    server.api("POST", "/api/vhosts", json={"domain": "restart.example"})
    assert eventually(lambda: statuses(server, "restart.example") == {200})


def curl_host(server: Server, host: str) -> tuple[int, bytes]:
    result = subprocess.run(
        [
            "curl",
            "-s",
            "-H",
            f"Host: {host}",
            "-w",
            "\n%{http_code}",
            f"http://127.0.0.1:{server.port('http')}/",
        ],
        capture_output=True,
        timeout=30,
        check=True,
    )
    body, _, code = result.stdout.rpartition(b"\n")
    return int(code), body


def test_reference_python_client_site_served(server: Server) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            PYTHON_DRIVER,
            str(CLIENTS / "onestack_client.py"),
            server.admin_url,
            ADMIN_USER,
            ADMIN_PASSWORD,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    placeholder = Path(
        server.data_dir, "sites", "python-test.local", "index.html"
    ).read_bytes()
    assert eventually(
        lambda: curl_host(server, "python-test.local") == (200, placeholder)
    )


def test_reference_javascript_client_site_served(server: Server) -> None:
    node = node_20()
    if node is None:
        pytest.skip("Node.js 20 or newer is not installed")
    script = (
        "const C = require(process.argv[1]);"
        "new C(process.argv[2], process.argv[3], process.argv[4])"
        ".createVirtualHost({domain: 'api-test.local', enabled: true})"
        ".then((v) => console.log(JSON.stringify(v)))"
        ".catch((e) => { console.error(e); process.exit(1); });"
    )
    result = subprocess.run(
        [
            node,
            "-e",
            script,
            str(CLIENTS / "onestack_client.js"),
            server.admin_url,
            ADMIN_USER,
            ADMIN_PASSWORD,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    placeholder = Path(
        server.data_dir, "sites", "api-test.local", "index.html"
    ).read_bytes()
    assert eventually(lambda: curl_host(server, "api-test.local") == (200, placeholder))
