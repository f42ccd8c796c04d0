"""The certificate routes of the admin API, against a real server process."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trustme

from onestack.events import Event, EventClient, socket_path
from onestack.store import Store
from tests.support import Server, run_server
from tests.tls.conftest import add_vhost


async def prepare_data_dir(
    data_dir: Path, *domains: tuple[str, list[str]]
) -> list[int]:
    """Create the database in the data directory with some TLS vhosts."""
    data_dir.mkdir(parents=True, exist_ok=True)
    store = Store(f"sqlite+aiosqlite:///{(data_dir / 'onestack.db').resolve()}")
    try:
        await store.migrate()
        return [await add_vhost(store, domain, aliases) for domain, aliases in domains]
    finally:
        await store.close()


@asynccontextmanager
async def serving(
    data_dir: Path, overrides: dict[str, Any] | None = None
) -> AsyncIterator[Server]:
    """Run ``onestack serve`` without blocking this test's event loop."""
    context = run_server(data_dir, overrides)
    server = await asyncio.to_thread(context.__enter__)
    try:
        yield server
    finally:
        await asyncio.to_thread(context.__exit__, None, None, None)


async def api(server: Server, method: str, path: str, **kwargs: Any) -> Any:
    return await asyncio.to_thread(server.api, method, path, **kwargs)


def upload_body(ca: trustme.CA, *names: str) -> dict[str, str]:
    leaf = ca.issue_cert(*names)
    chain = "".join(b.bytes().decode() for b in (*leaf.cert_chain_pems, ca.cert_pem))
    return {"certificate": chain, "privateKey": leaf.private_key_pem.bytes().decode()}


@pytest.fixture
def server_dir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "data"


async def check_rejections(server: Server, vhost_id: int, ca: trustme.CA) -> None:
    """PUT invalid uploads and check each 400 names the field and the reason."""
    good = upload_body(ca, "example.test", "www.example.test")
    other = upload_body(ca, "example.test", "www.example.test")
    narrow = upload_body(ca, "example.test")
    path = f"/api/vhosts/{vhost_id}/certificate"
    cases = [
        ({**good, "privateKey": other["privateKey"]}, "privateKey", "does not match"),
        (narrow, "certificate", "do not cover www.example.test"),
        ({**good, "certificate": "garbage"}, "certificate", "no PEM CERTIFICATE"),
        ({"certificate": good["certificate"]}, "privateKey", "Field required"),
    ]

    for body, field, reason in cases:
        response = await api(server, "PUT", path, json=body)
        assert response.status_code == 400, response.text
        error = response.json()
        assert error["code"] == "INVALID_REQUEST"
        assert reason in error["error"], error
        assert field in error["error"], error
    shown = await api(server, "GET", path)
    assert shown.status_code == 404


async def test_upload_show_delete(server_dir: Path) -> None:
    [vhost_id] = await prepare_data_dir(
        server_dir, ("example.test", ["www.example.test"])
    )
    ca = trustme.CA()

    async with serving(server_dir) as server:
        events: list[Event] = []
        listener = EventClient(socket_path(server_dir))

        async def collect(event: Event) -> None:
            events.append(event)

        listener.subscribe(collect)
        await listener.start()
        await check_rejections(server, vhost_id, ca)
        missing = await api(server, "GET", f"/api/vhosts/{vhost_id}/certificate")
        assert missing.status_code == 404
        unknown = await api(server, "GET", "/api/vhosts/999/certificate")
        assert unknown.status_code == 404

        body = upload_body(ca, "example.test", "www.example.test")
        uploaded = await api(
            server, "PUT", f"/api/vhosts/{vhost_id}/certificate", json=body
        )
        assert uploaded.status_code == 200, uploaded.text
        assert uploaded.json()["success"] is True

        shown = await api(server, "GET", f"/api/vhosts/{vhost_id}/certificate")
        assert shown.status_code == 200
        certificate = shown.json()
        assert certificate["source"] == "uploaded"
        assert certificate["names"] == ["example.test", "www.example.test"]
        assert certificate["notAfter"].endswith("Z")
        assert certificate["notBefore"].endswith("Z")
        assert "trustme" in certificate["issuer"]

        deleted = await api(server, "DELETE", f"/api/vhosts/{vhost_id}/certificate")
        assert deleted.status_code == 200
        assert deleted.json() == {"success": True}
        again = await api(server, "DELETE", f"/api/vhosts/{vhost_id}/certificate")
        assert again.status_code == 404
        gone = await api(server, "GET", f"/api/vhosts/{vhost_id}/certificate")
        assert gone.status_code == 404

        for _ in range(50):
            if len(events) >= 2:
                break
            await asyncio.sleep(0.1)
        await listener.stop()
        assert [e["type"] for e in events] == [
            "certificateIssued",
            "certificateDeleted",
        ]
        assert events[0]["data"] == {
            "vhostId": vhost_id,
            "source": "uploaded",
            "names": ["example.test", "www.example.test"],
            "notAfter": certificate["notAfter"],
        }
        assert events[1]["data"] == {"vhostId": vhost_id, "source": "uploaded"}
