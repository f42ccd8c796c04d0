"""Renewal scheduling of CertificateManager, with an issuer scripted to fail."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from onestack.config import AcmeConfig
from onestack.store import Store
from onestack.store import certificates as certificate_store
from onestack.tls.acme_client import AcmeError
from onestack.tls.certificates import chain_info, utc_now
from onestack.tls.manager import CertificateManager
from onestack.tls.selfsigned import IssuedCertificate, create_self_signed
from tests.tls.conftest import add_vhost


class ScriptedIssuer:
    """Fails while ``failures`` is positive, then issues self-signed chains."""

    failures = 0
    orders: list[list[str]] = []

    def __init__(self, _config: AcmeConfig, _data_dir: Path) -> None:
        pass

    def issue(self, names: list[str]) -> IssuedCertificate:
        ScriptedIssuer.orders.append(list(names))
        if ScriptedIssuer.failures > 0:
            ScriptedIssuer.failures -= 1
            raise AcmeError("scripted failure")
        return create_self_signed(names)


@pytest.fixture
def manager(store: Store, tmp_path: Path) -> CertificateManager:
    ScriptedIssuer.failures = 0
    ScriptedIssuer.orders = []

    async def publish(_type: str, _data: dict[str, Any]) -> None:
        pass

    return CertificateManager(
        store,
        tmp_path,
        lambda: AcmeConfig(directoryUrl="https://127.0.0.1:9/dir"),
        publish,
        retry_base=60,
        retry_max=200,
        issuer_factory=ScriptedIssuer,
    )


async def test_retry_delays_double_to_max(
    store: Store, manager: CertificateManager
) -> None:
    vhost_id = await add_vhost(store, "a.test")
    vhost = await certificate_store.get_vhost(store, vhost_id)
    assert vhost is not None
    ScriptedIssuer.failures = 4
    waits = []

    for _ in range(4):
        before = time.monotonic()
        with pytest.raises(AcmeError):
            await manager.renew(vhost)
        after = time.monotonic()
        next_attempt = manager.retries[vhost_id].next_attempt
        waits.append((next_attempt - after, next_attempt - before))
        assert manager.retries[vhost_id].last_error == "scripted failure"

    for (low, high), expected in zip(waits, [60, 120, 200, 200], strict=True):
        assert low <= expected <= high

    # Once the order succeeds, the retry state is gone.
    certificate = await manager.renew(vhost)
    assert certificate.source == "acme"
    assert vhost_id not in manager.retries


async def test_renewal_window(store: Store, manager: CertificateManager) -> None:
    due_id = await add_vhost(store, "due.test")
    fresh_id = await add_vhost(store, "fresh.test")
    uploaded_id = await add_vhost(store, "uploaded.test")
    now = utc_now()
    # 90-day certificates: "due" is 70 days old (20 left), "fresh" 10 days.
    for vhost_id, name, source, age in [
        (due_id, "due.test", "acme", 70),
        (fresh_id, "fresh.test", "acme", 10),
        (uploaded_id, "uploaded.test", "uploaded", 70),
    ]:
        issued = create_self_signed([name], now=now - timedelta(days=age))
        info = chain_info(issued.cert_pem)
        await certificate_store.add_certificate(
            store,
            vhost_id,
            source,
            info.names,
            info.not_before,
            info.not_after,
            issued.cert_pem,
            issued.key_pem,
        )

    assert await manager.check_all() == 1
    assert ScriptedIssuer.orders == [["due.test"]]
    stored = await certificate_store.vhost_certificates(store, [due_id])
    assert len(stored) == 1
    assert stored[0].not_after > now + timedelta(days=80)


async def test_disabled_acme_orders_nothing(store: Store, tmp_path: Path) -> None:
    await add_vhost(store, "a.test")
    ScriptedIssuer.orders = []

    async def publish(_type: str, _data: dict[str, Any]) -> None:
        pass

    manager = CertificateManager(
        store,
        tmp_path,
        lambda: AcmeConfig(enabled=False),
        publish,
        issuer_factory=ScriptedIssuer,
    )

    assert await manager.check_all() == 0
    assert ScriptedIssuer.orders == []


async def test_inactive_manager_orders_after_enabling(
    store: Store, tmp_path: Path
) -> None:
    await add_vhost(store, "a.test")
    ScriptedIssuer.failures = 0
    ScriptedIssuer.orders = []
    https_enabled = False

    async def publish(_type: str, _data: dict[str, Any]) -> None:
        pass

    manager = CertificateManager(
        store,
        tmp_path,
        lambda: AcmeConfig(),
        publish,
        issuer_factory=ScriptedIssuer,
        active=lambda: https_enabled,
    )

    assert await manager.check_all() == 0
    assert ScriptedIssuer.orders == []
    https_enabled = True
    assert await manager.check_all() == 1
    assert ScriptedIssuer.orders == [["a.test"]]
