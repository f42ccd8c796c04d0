"""Certificates served by the real https module, checked with curl and s_client."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import trustme
from cryptography import x509

from tests.support import Server
from tests.tls.support import Pebble, run_pebble, start_resolver
from tests.tls.test_certificate_api import api, serving, upload_body

pytestmark = pytest.mark.slow


async def curl(ca_file: Path, name: str, port: int) -> tuple[int, str]:
    """Fetch https://name:port/ over 127.0.0.1, trusting only ``ca_file``."""
    process = await asyncio.create_subprocess_exec(
        "curl", "-sS", "--max-time", "20", "--cacert", str(ca_file),
        "--resolve", f"{name}:{port}:127.0.0.1",
        "-o", "/dev/null", "-w", "%{http_code}", f"https://{name}:{port}/",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    output, _ = await asyncio.wait_for(process.communicate(), 30)
    return process.returncode or 0, output.decode(errors="replace")


async def served_leaf(name: str, port: int) -> x509.Certificate | None:
    process = await asyncio.create_subprocess_exec(
        "openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-servername", name,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    output = (await asyncio.wait_for(process.communicate(), 30))[0].decode()
    if "-----BEGIN CERTIFICATE-----" not in output:
        return None
    start = output.index("-----BEGIN CERTIFICATE-----")
    end = output.index("-----END CERTIFICATE-----") + len("-----END CERTIFICATE-----")
    return x509.load_pem_x509_certificate(output[start:end].encode())


async def wait_for_curl(ca_file: Path, name: str, port: int) -> tuple[int, str]:
    """Retry curl until the workers have reloaded the new certificate."""
    deadline = time.monotonic() + 15
    while True:
        code, output = await curl(ca_file, name, port)
        if code == 0 or time.monotonic() > deadline:
            return code, output
        await asyncio.sleep(0.2)


async def create_vhost(server: Server, domain: str, aliases: list[str]) -> int:
    body = {"domain": domain, "aliases": aliases, "ssl": True}
    created = await api(server, "POST", "/api/vhosts", json=body)
    assert created.status_code == 201, created.text
    return int(created.json()["id"])


def https_overrides(extra: dict[str, Any] | None = None) -> dict[str, Any]:
    https: dict[str, Any] = {"enabled": True}
    https.update(extra or {})
    return {"modules": {"http": {"enabled": True}, "https": https}}


async def test_uploaded_certificate_over_https(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    ca = trustme.CA()
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    acme_off = {"acme": {"enabled": False}}

    async with serving(data_dir, https_overrides(acme_off)) as server:
        await asyncio.to_thread(server.wait_module, "https")
        port = server.port("https")
        vhost_id = await create_vhost(server, "site.test", ["www.site.test"])

        # Until an upload, the vhost serves a self-signed certificate.
        deadline = time.monotonic() + 15
        leaf = await served_leaf("site.test", port)
        while leaf is None and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
            leaf = await served_leaf("site.test", port)
        assert leaf is not None, server.log()
        assert leaf.issuer == leaf.subject
        code, _ = await curl(ca_file, "site.test", port)
        assert code != 0

        body = upload_body(ca, "site.test", "www.site.test")
        uploaded = await api(
            server, "PUT", f"/api/vhosts/{vhost_id}/certificate", json=body
        )
        assert uploaded.status_code == 200, uploaded.text
        for name in ["site.test", "www.site.test"]:
            code, output = await wait_for_curl(ca_file, name, port)
            assert code == 0, output + server.log()
            assert output == "200"

        # An unknown name gets no certificate at all.
        assert await served_leaf("other.test", port) is None
        code, output = await curl(ca_file, "other.test", port)
        assert code != 0, output


@pytest.fixture
async def pebble_for_http(tmp_path: Path) -> AsyncIterator[tuple[Pebble, int]]:
    """Pebble validating HTTP-01 on the port the http module will use."""
    from tests.support import free_port

    http_port = free_port()
    resolver, dns_port = await start_resolver()
    try:
        with run_pebble(tmp_path / "pebble", http_port, dns_port) as pebble:
            yield pebble, http_port
    finally:
        resolver.close()


async def test_acme_certificate_over_https(
    tmp_path: Path, pebble_for_http: tuple[Pebble, int]
) -> None:
    pebble, http_port = pebble_for_http
    data_dir = tmp_path / "data"
    acme = {
        "enabled": True,
        "directoryUrl": pebble.directory_url,
        "caBundle": str(pebble.ca_bundle),
    }
    overrides = https_overrides({"acme": acme})
    overrides["modules"]["http"]["port"] = http_port
    root_file = tmp_path / "root.pem"
    root_file.write_text(await asyncio.to_thread(pebble.root_pem))

    async with serving(data_dir, overrides) as server:
        await asyncio.to_thread(server.wait_module, "http")
        await asyncio.to_thread(server.wait_module, "https")
        port = server.port("https")
        vhost_id = await create_vhost(
            server, "acme.example.test", ["www.acme.example.test"]
        )

        # The renewal task orders on vhostCreated, and the http module serves
        # Pebble's HTTP-01 requests from DATA_DIR/acme/challenges.
        deadline = time.monotonic() + 60
        code, output = await curl(root_file, "acme.example.test", port)
        while code != 0 and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
            code, output = await curl(root_file, "acme.example.test", port)
        assert code == 0, output + server.log()
        assert output == "200"
        code, output = await curl(root_file, "www.acme.example.test", port)
        assert code == 0, output
        assert f"ACME certificates come from {pebble.directory_url}" in server.log()

        # The API orders again on request, and shows what the vhost serves.
        renewed = await api(server, "POST", f"/api/vhosts/{vhost_id}/certificate/renew")
        assert renewed.status_code == 200, renewed.text + server.log()
        assert renewed.json()["certificate"]["source"] == "acme"
        assert sorted(renewed.json()["certificate"]["names"]) == [
            "acme.example.test",
            "www.acme.example.test",
        ]
        shown = await api(server, "GET", f"/api/vhosts/{vhost_id}/certificate")
        assert shown.json()["source"] == "acme"
        assert "Pebble" in shown.json()["issuer"]

        # A vhost without ssl gets no ACME order.
        plain = {"domain": "plain.example.test", "ssl": False}
        created = await api(server, "POST", "/api/vhosts", json=plain)
        assert created.status_code == 201, created.text
        plain_id = created.json()["id"]
        refused = await api(server, "POST", f"/api/vhosts/{plain_id}/certificate/renew")
        assert refused.status_code == 400
        assert "does not have ssl enabled" in refused.json()["error"]
