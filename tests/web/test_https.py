"""The server over TLS: files streamed through the transport, and the https module."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import ssl
from pathlib import Path

import pytest
import trustme

from onestack.config import HttpLimits
from onestack.store import Store
from onestack.web.module import HttpsModule
from onestack.web.server import WebServer
from tests.support import free_port
from tests.web.conftest import insert_vhost, start_web


async def curl_tls(
    port: int, ca_file: Path, host: str, path: str, *args: str
) -> tuple[int, bytes]:
    process = await asyncio.create_subprocess_exec(
        "curl",
        "-s",
        "--cacert",
        str(ca_file),
        "--resolve",
        f"{host}:{port}:127.0.0.1",
        "-w",
        "\n%{http_code}",
        *args,
        f"https://{host}:{port}{path}",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, _ = await asyncio.wait_for(process.communicate(), 30)
    body, _, code = stdout.rpartition(b"\n")
    return int(code or 0), body


@pytest.fixture
def tls_files(tmp_path: Path) -> tuple[ssl.SSLContext, Path]:
    authority = trustme.CA()
    certificate = authority.issue_cert("example.com", "www.example.com")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    certificate.configure_cert(context)
    ca_file = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(ca_file))
    return context, ca_file


async def test_tls_server_streams_large_files(
    store: Store, tmp_path: Path, site: Path, tls_files: tuple[ssl.SSLContext, Path]
) -> None:
    context, ca_file = tls_files
    data = os.urandom(2 * 1024 * 1024 + 5)
    (site / "big.bin").write_bytes(data)
    await insert_vhost(
        store,
        "example.com",
        site,
        aliases=["www.example.com"],
        ssl=True,
        redirect_to_https=True,
    )
    server = WebServer(
        store,
        tmp_path / "data",
        HttpLimits(),
        access_log=None,
        is_tls=True,
        https_port=443,
    )
    await server.reload_vhosts()
    port = free_port()
    await server.listen("127.0.0.1", port, context)
    try:
        # No redirect loop over TLS, and the file arrives whole through reads.
        assert await curl_tls(port, ca_file, "example.com", "/") == (
            200,
            b"<h1>home</h1>\n",
        )
        status, body = await curl_tls(port, ca_file, "example.com", "/big.bin")
        assert status == 200
        assert body == data
        status, body = await curl_tls(
            port, ca_file, "www.example.com", "/big.bin", "-r", "1000-1999"
        )
        assert status == 206
        assert body == data[1000:2000]
    finally:
        await server.stop()


TLS_AVAILABLE = importlib.util.find_spec("onestack.tls") is not None


@pytest.mark.skipif(TLS_AVAILABLE, reason="onestack.tls is present")
async def test_https_module_without_tls_package(store: Store, tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="needs the onestack.tls package"):
        await start_web(store, tmp_path / "data", HttpsModule)


@pytest.mark.skipif(not TLS_AVAILABLE, reason="onestack.tls is not in this version")
async def test_https_module_serves_vhost(
    store: Store, tmp_path: Path, site: Path
) -> None:
    await insert_vhost(store, "example.com", site, ssl=True)
    web = await start_web(store, tmp_path / "data", HttpsModule)
    try:
        process = await asyncio.create_subprocess_exec(
            "curl",
            "-s",
            "-k",
            "--resolve",
            f"example.com:{web.port}:127.0.0.1",
            f"https://example.com:{web.port}/",
            stdout=asyncio.subprocess.PIPE,
        )
        stdout, _ = await asyncio.wait_for(process.communicate(), 30)
        assert stdout == b"<h1>home</h1>\n"
    finally:
        await web.module.stop()
