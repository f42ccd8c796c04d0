from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trustme
from cryptography import x509

from onestack.store import Store
from onestack.store import certificates as certificate_store
from onestack.tls.certificates import chain_info, dns_names
from onestack.tls.sni import CertificateSet, default_context
from tests.tls.conftest import add_vhost
from tests.tls.support import answer_over_tls

REQUEST = b"GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"


async def s_client(port: int, server_name: str | None) -> tuple[int, str]:
    """Run ``openssl s_client`` against the port; return its exit code and output."""
    args = ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-showcerts"]
    args += ["-servername", server_name] if server_name else ["-noservername"]
    process = await asyncio.create_subprocess_exec(
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(REQUEST), 30)
    return process.returncode or 0, output.decode(errors="replace")


def served_leaf(output: str) -> x509.Certificate:
    start = output.index("-----BEGIN CERTIFICATE-----")
    end = output.index("-----END CERTIFICATE-----") + len("-----END CERTIFICATE-----")
    return x509.load_pem_x509_certificate(output[start:end].encode())


def served_names(output: str) -> list[str]:
    return dns_names(served_leaf(output))


@pytest.fixture
async def tls_server(
    store: Store, tmp_path: Path
) -> AsyncIterator[tuple[CertificateSet, int]]:
    """A tiny TLS server on a free port that sends "hello" after the handshake."""
    certificates = CertificateSet(store, tmp_path)
    context = certificates.server_context()

    async def answer(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await answer_over_tls(context, reader, writer)

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield certificates, port
    finally:
        server.close()
        await server.wait_closed()


async def test_sni_selects_vhost_certificate(
    store: Store, tls_server: tuple[CertificateSet, int]
) -> None:
    certificates, port = tls_server
    await add_vhost(store, "one.test", ["www.one.test"])
    await add_vhost(store, "two.test")
    await certificates.load()

    for name, expected in [
        ("one.test", ["one.test", "www.one.test"]),
        ("WWW.One.Test", ["one.test", "www.one.test"]),
        ("two.test", ["two.test"]),
    ]:
        code, output = await s_client(port, name)
        assert code == 0, output
        assert served_names(output) == expected, name
        assert "TLSv1.3" in output


async def test_unknown_sni_fails_handshake(
    store: Store, tls_server: tuple[CertificateSet, int]
) -> None:
    certificates, port = tls_server
    await add_vhost(store, "one.test")
    await certificates.load()

    for name in ["other.test", None]:
        code, output = await s_client(port, name)
        assert code != 0, output
        assert "BEGIN CERTIFICATE" not in output, name
    code, output = await s_client(port, "other.test")
    assert "unrecognized name" in output


async def test_tls_versions_limited(
    store: Store, tls_server: tuple[CertificateSet, int]
) -> None:
    certificates, port = tls_server
    await add_vhost(store, "one.test")
    await certificates.load()
    base = ["openssl", "s_client", "-connect", f"127.0.0.1:{port}"]
    base += ["-servername", "one.test"]

    for flag, works in [("-tls1_2", True), ("-tls1_3", True), ("-tls1_1", False)]:
        process = await asyncio.create_subprocess_exec(
            *base,
            flag,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await asyncio.wait_for(process.communicate(REQUEST), 30)
        assert (process.returncode == 0) is works, (flag, output.decode())


async def test_reload_updates_listening_context(
    store: Store, tls_server: tuple[CertificateSet, int], tmp_path: Path
) -> None:
    certificates, port = tls_server
    await certificates.load()
    code, _ = await s_client(port, "late.test")
    assert code != 0

    vhost_id = await add_vhost(store, "late.test")
    await certificates.load()
    code, output = await s_client(port, "late.test")
    assert code == 0, output
    first = certificates.serving(vhost_id)
    assert first is not None
    assert first.source == "self-signed"

    # An uploaded certificate then replaces the self-signed one.
    ca = trustme.CA()
    leaf = ca.issue_cert("late.test")
    pem = "".join(b.bytes().decode() for b in (*leaf.cert_chain_pems, ca.cert_pem))
    info = chain_info(pem)
    await certificate_store.add_certificate(
        store,
        vhost_id,
        "uploaded",
        info.names,
        info.not_before,
        info.not_after,
        pem,
        leaf.private_key_pem.bytes().decode(),
    )
    await certificates.load()
    code, output = await s_client(port, "late.test")
    assert code == 0, output
    uploaded_leaf = x509.load_pem_x509_certificate(leaf.cert_chain_pems[0].bytes())
    assert served_leaf(output) == uploaded_leaf
    serving = certificates.serving(vhost_id)
    assert serving is not None
    assert serving.source == "uploaded"


async def test_self_signed_created_once(store: Store, tmp_path: Path) -> None:
    vhost_id = await add_vhost(store, "one.test")
    await add_vhost(store, "plain.test", ssl=False)
    await add_vhost(store, "off.test", enabled=False)

    first = CertificateSet(store, tmp_path)
    await first.load()
    second = CertificateSet(store, tmp_path)
    await second.load()

    stored = await certificate_store.vhost_certificates(store)
    assert [c.vhost_id for c in stored] == [vhost_id]
    assert first.serving(vhost_id) == second.serving(vhost_id)
    assert first.context_for("ONE.test") is not None
    assert first.context_for("plain.test") is None
    assert first.context_for("off.test") is None


async def test_alias_change_replaces_self_signed(store: Store, tmp_path: Path) -> None:
    from sqlalchemy import update

    from onestack.store.tables import vhosts

    vhost_id = await add_vhost(store, "one.test")
    certificates = CertificateSet(store, tmp_path)
    await certificates.load()
    async with store.engine.begin() as conn:
        await conn.execute(
            update(vhosts).where(vhosts.c.id == vhost_id).values(aliases=["new.test"])
        )
    await certificates.load()

    serving = certificates.serving(vhost_id)
    assert serving is not None
    assert serving.names == ["one.test", "new.test"]
    assert certificates.context_for("new.test") is not None


async def test_default_context_for_mail(store: Store, tmp_path: Path) -> None:
    context = await default_context(store, tmp_path, "Mail.Example.test")
    path = tmp_path / "tls" / "self-signed" / "mail.example.test.pem"

    assert isinstance(context, ssl.SSLContext)
    assert path.stat().st_mode & 0o777 == 0o600
    first = path.read_text()
    await default_context(store, tmp_path, "mail.example.test")
    assert path.read_text() == first
    with pytest.raises(ValueError):
        await default_context(store, tmp_path, "../etc")


async def test_default_context_uses_vhost_certificate(
    store: Store, tmp_path: Path
) -> None:
    await add_vhost(store, "example.test", ["mail.example.test"])
    await CertificateSet(store, tmp_path).load()

    context = await default_context(store, tmp_path, "mail.example.test")

    assert isinstance(context, ssl.SSLContext)
    assert not (tmp_path / "tls" / "self-signed").exists()


async def test_replaced_certificate_reloads_context(
    store: Store, tmp_path: Path
) -> None:
    # Contexts are keyed by the chain's text, not the row id, so a replaced
    # certificate is loaded even on a database that reuses deleted row ids
    # (OneStack's tables use AUTOINCREMENT, so the ids below differ).
    vhost_id = await add_vhost(store, "a.test")
    certificates = CertificateSet(store, tmp_path)
    await certificates.load()
    ca = trustme.CA()
    ids = []
    contexts = []
    for _ in range(2):
        leaf = ca.issue_cert("a.test")
        pem = "".join(b.bytes().decode() for b in (*leaf.cert_chain_pems, ca.cert_pem))
        info = chain_info(pem)
        ids.append(
            await certificate_store.add_certificate(
                store,
                vhost_id,
                "uploaded",
                info.names,
                info.not_before,
                info.not_after,
                pem,
                leaf.private_key_pem.bytes().decode(),
                replace=True,
            )
        )
        await certificates.load()
        contexts.append(certificates.context_for("a.test"))

    assert ids[0] != ids[1]
    assert contexts[0] is not None
    assert contexts[1] is not None
    assert contexts[0] is not contexts[1]
