"""The http module under ``onestack serve``: worker processes, events, curl."""

from __future__ import annotations

import asyncio
import re
import socket
import subprocess
import time
from pathlib import Path

from onestack.events import EventClient, socket_path
from onestack.store import Store
from tests.support import Server, run_server
from tests.web.conftest import insert_vhost


async def _prepare(data_dir: Path, site: Path) -> None:
    store = Store(f"sqlite+aiosqlite:///{data_dir / 'onestack.db'}")
    await store.migrate()
    await insert_vhost(store, "example.com", site, aliases=["www.example.com"])
    await store.close()


async def _add_and_publish(data_dir: Path, domain: str, root: Path) -> None:
    store = Store(f"sqlite+aiosqlite:///{data_dir / 'onestack.db'}")
    await insert_vhost(store, domain, root)
    await store.close()
    events = EventClient(socket_path(data_dir))
    await events.start()
    await events.publish("vhostCreated", {"domain": domain})
    await events.stop()


def wait_listening(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"nothing listens on port {port}")


def curl(server: Server, host: str, path: str = "/") -> tuple[int, bytes]:
    port = server.port("http")
    result = subprocess.run(
        [
            "curl",
            "-s",
            "-H",
            f"Host: {host}",
            "-w",
            "\n%{http_code}",
            f"http://127.0.0.1:{port}{path}",
        ],
        capture_output=True,
        timeout=30,
        check=True,
    )
    body, _, code = result.stdout.rpartition(b"\n")
    return int(code), body


def test_vhost_served_by_every_worker(tmp_path: Path, site: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    asyncio.run(_prepare(data_dir, site))
    overrides = {"modules": {"http": {"enabled": True, "workers": 2}}}
    with run_server(data_dir, overrides) as server:
        wait_listening(server.port("http"))
        assert curl(server, "www.example.com") == (200, b"<h1>home</h1>\n")
        assert curl(server, "nobody.test")[0] == 404

        other = tmp_path / "other"
        other.mkdir()
        (other / "index.html").write_text("other site")
        asyncio.run(_add_and_publish(data_dir, "other.test", other))

        # Both workers reload; then every fresh connection, whichever worker
        # the kernel hands it to, finds the new vhost.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            reloaded = set(
                re.findall(
                    r"\[http-(\d)\] onestack.web.server: loaded 2 vhosts", server.log()
                )
            )
            if reloaded == {"0", "1"}:
                break
            time.sleep(0.05)
        assert reloaded == {"0", "1"}, server.log()
        answers = [curl(server, "other.test") for _ in range(20)]
        assert answers == [(200, b"other site")] * 20

    log_file = data_dir / "logs" / "other.test.access.log"
    assert len(log_file.read_text().splitlines()) == 20


def wait_for(predicate, timeout: float = 30.0) -> bool:  # type: ignore[no-untyped-def]
    """Poll ``predicate`` until it is true or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return bool(predicate())


def worker_reloads(server: Server, count: int) -> set[str]:
    """Return the http workers that logged loading ``count`` vhosts."""
    pattern = rf"\[http-(\d)\] onestack.web.server: loaded {count} vhosts"
    return set(re.findall(pattern, server.log()))


def test_vhost_api_changes_reach_both_workers(tmp_path: Path) -> None:
    overrides = {"modules": {"http": {"enabled": True, "workers": 2}}}
    with run_server(tmp_path / "data", overrides) as server:
        assert server.wait_module("http")["running"] is True

        created = server.api("POST", "/api/vhosts", json={"domain": "api.test"})
        assert created.status_code == 201, created.text
        vhost_id = created.json()["id"]
        assert wait_for(lambda: worker_reloads(server, 1) == {"0", "1"}), server.log()
        answers = [curl(server, "API.test:8080") for _ in range(20)]
        assert all(status == 200 for status, _ in answers)
        assert all(b"api.test" in body for _, body in answers)

        changed = server.api("PUT", f"/api/vhosts/{vhost_id}", json={"enabled": False})
        assert changed.status_code == 200, changed.text
        assert wait_for(
            lambda: len(re.findall(r"loaded 1 vhosts", server.log())) >= 4
        ), server.log()
        assert [curl(server, "api.test")[0] for _ in range(20)] == [404] * 20, (
            server.log()
        )

        server.api("PUT", f"/api/vhosts/{vhost_id}", json={"enabled": True})
        assert wait_for(
            lambda: len(re.findall(r"loaded 1 vhosts", server.log())) >= 6
        ), server.log()
        for _ in range(5):
            assert curl(server, "api.test")[0] == 200, server.log()

        # Stats from both workers reach the API (flushed every 2 s).
        def stats_counted() -> bool:
            stats = server.api("GET", f"/api/vhosts/{vhost_id}/stats").json()
            return stats["requests"] >= 25

        assert wait_for(stats_counted), server.log()
        stats = server.api("GET", f"/api/vhosts/{vhost_id}/stats").json()
        assert stats["bytesServed"] > 0
        assert stats["lastRequest"] is not None
        assert stats["averageResponseTime"] >= 0

        deleted = server.api("DELETE", f"/api/vhosts/{vhost_id}")
        assert deleted.status_code == 200
        # Each worker also logged "loaded 0 vhosts" when it started.
        assert wait_for(
            lambda: len(re.findall(r"loaded 0 vhosts", server.log())) >= 4
        ), server.log()
        assert curl(server, "api.test")[0] == 404, server.log()
