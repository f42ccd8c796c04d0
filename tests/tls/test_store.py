"""Certificate queries on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from onestack.store import Store
from onestack.store import certificates as certificate_store
from onestack.tls.certificates import chain_info, utc_now
from onestack.tls.selfsigned import create_self_signed
from onestack.tls.sni import CertificateSet
from tests.tls.conftest import add_vhost


async def add(
    store: Store, vhost_id: int, source: str, names: list[str], age: int = 0
) -> int:
    issued = create_self_signed(names, now=utc_now() - timedelta(days=age))
    info = chain_info(issued.cert_pem)
    return await certificate_store.add_certificate(
        store,
        vhost_id,
        source,
        info.names,
        info.not_before,
        info.not_after,
        issued.cert_pem,
        issued.key_pem,
    )


async def test_best_certificate_order(store: Store) -> None:
    vhost_id = await add_vhost(store, "a.test", ["b.test"])
    vhost = await certificate_store.get_vhost(store, vhost_id)
    assert vhost is not None
    assert vhost.names == ["a.test", "b.test"]

    self_signed = await add(store, vhost_id, "self-signed", vhost.names)
    best = await certificate_store.find_best_certificate(store, vhost)
    assert best is not None
    assert best.id == self_signed
    assert best.not_after.tzinfo is not None

    uploaded = await add(store, vhost_id, "uploaded", vhost.names)
    best = await certificate_store.find_best_certificate(store, vhost)
    assert best is not None
    assert best.id == uploaded

    # An ACME certificate that misses an alias, or has expired, is not used.
    await add(store, vhost_id, "acme", ["a.test"])
    await add(store, vhost_id, "acme", vhost.names, age=100)
    best = await certificate_store.find_best_certificate(store, vhost)
    assert best is not None
    assert best.id == uploaded

    acme = await add(store, vhost_id, "acme", vhost.names)
    best = await certificate_store.find_best_certificate(store, vhost)
    assert best is not None
    assert best.id == acme


async def test_replace_and_delete(store: Store) -> None:
    vhost_id = await add_vhost(store, "a.test")
    await add(store, vhost_id, "uploaded", ["a.test"])
    await add(store, vhost_id, "self-signed", ["a.test"])
    issued = create_self_signed(["a.test"])
    info = chain_info(issued.cert_pem)

    newest = await certificate_store.add_certificate(
        store,
        vhost_id,
        "uploaded",
        info.names,
        info.not_before,
        info.not_after,
        issued.cert_pem,
        issued.key_pem,
        replace=True,
    )

    stored = await certificate_store.vhost_certificates(store, [vhost_id])
    assert sorted((c.source, c.id == newest) for c in stored) == [
        ("self-signed", False),
        ("uploaded", True),
    ]
    assert await certificate_store.delete_certificates(store, vhost_id, "uploaded") == 1
    assert await certificate_store.delete_certificates(store, vhost_id, "uploaded") == 0


async def test_certificate_set_loads(store: Store, tmp_path: Path) -> None:
    vhost_id = await add_vhost(store, "a.test")
    certificates = CertificateSet(store, tmp_path)

    await certificates.load()

    serving = certificates.serving(vhost_id)
    assert serving is not None
    assert serving.source == "self-signed"
    assert certificates.context_for("a.test") is not None
