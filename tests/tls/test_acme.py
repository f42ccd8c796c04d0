"""ACME end to end against Debian's Pebble, with real HTTP-01 validation."""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from onestack.config import AcmeConfig
from onestack.store import Store
from onestack.store import certificates as certificate_store
from onestack.tls.acme_client import AcmeError, challenge_dir
from onestack.tls.certificates import load_chain
from onestack.tls.manager import CertificateManager
from onestack.tls.sni import CertificateSet
from tests.tls.conftest import add_vhost
from tests.tls.support import (
    Pebble,
    answer_over_tls,
    run_pebble,
    start_challenge_responder,
    start_resolver,
)

pytestmark = pytest.mark.slow


@pytest.fixture
async def pebble(tmp_path: Path) -> AsyncIterator[Pebble]:
    """Pebble resolving every name to 127.0.0.1 and validating on our responder."""
    resolver, dns_port = await start_resolver()
    responder, http_port = await start_challenge_responder(
        tmp_path, refused_hosts=frozenset({"refused.example.test"})
    )
    try:
        with run_pebble(tmp_path / "pebble", http_port, dns_port) as running:
            yield running
    finally:
        responder.close()
        await responder.wait_closed()
        resolver.close()


def manager_for(
    store: Store,
    tmp_path: Path,
    pebble: Pebble,
    events: list[dict[str, Any]],
    inline_bundle: bool = False,
    **kw: Any,
) -> CertificateManager:
    """Return a manager for Pebble; ``inline_bundle`` puts the PEM text in caBundle."""
    bundle = str(pebble.ca_bundle)
    if inline_bundle:
        bundle = pebble.ca_bundle.read_text()
    config = AcmeConfig(
        directoryUrl=pebble.directory_url,
        caBundle=bundle,
        email="admin@example.test",
    )

    async def publish(type_: str, data: dict[str, Any]) -> None:
        events.append({"type": type_, "data": data})

    return CertificateManager(store, tmp_path, lambda: config, publish, **kw)


async def test_acme_issues_verifiable_chain(
    store: Store, tmp_path: Path, pebble: Pebble
) -> None:
    vhost_id = await add_vhost(store, "site.example.test", ["www.example.test"])
    vhost = await certificate_store.get_vhost(store, vhost_id)
    assert vhost is not None
    events: list[dict[str, Any]] = []
    manager = manager_for(store, tmp_path, pebble, events)

    certificate = await manager.renew(vhost)

    assert certificate.source == "acme"
    assert sorted(certificate.names) == ["site.example.test", "www.example.test"]
    assert len(load_chain(certificate.cert_pem)) >= 2
    assert events == [
        {
            "type": "certificateIssued",
            "data": {
                "vhostId": vhost_id,
                "source": "acme",
                "names": certificate.names,
                "notAfter": certificate.not_after.isoformat(
                    timespec="milliseconds"
                ).replace("+00:00", "Z"),
            },
        }
    ]
    assert list(challenge_dir(tmp_path).iterdir()) == []

    # openssl verifies the chain against Pebble's root.
    root = tmp_path / "root.pem"
    root.write_text(pebble.root_pem())
    chain = load_chain(certificate.cert_pem)
    leaf_file, untrusted_file = tmp_path / "leaf.pem", tmp_path / "chain.pem"
    leaf_file.write_text(
        certificate.cert_pem.split("-----END CERTIFICATE-----")[0]
        + "-----END CERTIFICATE-----\n"
    )
    untrusted_file.write_text(certificate.cert_pem)
    verify = subprocess.run(
        ["openssl", "verify", "-CAfile", root, "-untrusted", untrusted_file, leaf_file],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert len(chain) >= 2

    # The account key was created once and is kept private.
    account = tmp_path / "acme" / "account.json"
    assert account.stat().st_mode & 0o777 == 0o600
    stored_account = json.loads(account.read_text())
    assert pebble.directory_url in stored_account["accounts"]

    # curl trusts the served chain with Pebble's root, by SNI.
    certificates = CertificateSet(store, tmp_path)
    await certificates.load()
    serving = certificates.serving(vhost_id)
    assert serving is not None
    assert serving.source == "acme"
    context = certificates.server_context()

    async def answer(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await answer_over_tls(context, reader, writer)

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        for name in ["site.example.test", "www.example.test"]:
            curl = await asyncio.create_subprocess_exec(
                "curl",
                "-sS",
                "--cacert",
                str(root),
                "--resolve",
                f"{name}:{port}:127.0.0.1",
                f"https://{name}:{port}/",
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
            )
            output, _ = await asyncio.wait_for(curl.communicate(), 30)
            assert curl.returncode == 0, output.decode()
            assert output == b"hello\n"
    finally:
        server.close()
        await server.wait_closed()

    # A second order reuses the stored account and replaces the first.
    again = await manager.renew(vhost)
    assert json.loads(account.read_text())["key"] == stored_account["key"]
    stored = await certificate_store.vhost_certificates(store, [vhost_id])
    assert [c.id for c in stored if c.source == "acme"] == [again.id]


async def test_manager_orders_missing_certificates(
    store: Store, tmp_path: Path, pebble: Pebble
) -> None:
    vhost_id = await add_vhost(store, "auto.example.test")
    await add_vhost(store, "plain.example.test", ssl=False)
    events: list[dict[str, Any]] = []
    manager = manager_for(
        store, tmp_path, pebble, events, inline_bundle=True, check_interval=3600
    )

    await manager.start()
    try:
        for _ in range(600):
            if events:
                break
            await asyncio.sleep(0.1)
    finally:
        await manager.stop()
        await manager.stop()

    assert [e["data"]["vhostId"] for e in events] == [vhost_id]
    # A current certificate is not ordered again.
    assert await manager.check_all() == 0


async def test_failed_validation_is_retried_later(
    store: Store, tmp_path: Path, pebble: Pebble, caplog: pytest.LogCaptureFixture
) -> None:
    vhost_id = await add_vhost(store, "refused.example.test")
    vhost = await certificate_store.get_vhost(store, vhost_id)
    assert vhost is not None
    events: list[dict[str, Any]] = []
    manager = manager_for(store, tmp_path, pebble, events, retry_base=600)

    with pytest.raises(AcmeError, match="challenge validation failed") as caught:
        await manager.renew(vhost)

    assert "refused.example.test" in str(caught.value)
    state = manager.retries[vhost_id]
    assert state.failures == 1
    assert events == []
    assert "ACME order for refused.example.test failed (attempt 1)" in caplog.text
    assert list(challenge_dir(tmp_path).iterdir()) == []
    # The pass before the retry time skips the vhost.
    assert await manager.check_all() == 0
    assert manager.retries[vhost_id].failures == 1
    stored = await certificate_store.vhost_certificates(store, [vhost_id])
    assert stored == []
