"""Limits over real sockets: slow-loris clients, idle connections, the cap."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from onestack.store import Store
from tests.web.conftest import insert_vhost, parse_responses, start_web

GET = b"GET /style.css HTTP/1.1\r\nHost: example.com\r\n\r\n"


async def fetch_once(port: int) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        b"GET /style.css HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n"
    )
    data = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    return parse_responses(data)[0].status


async def test_slow_loris_closed_while_others_served(
    store: Store, tmp_path: Path, site: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    await insert_vhost(store, "example.com", site)
    web = await start_web(store, tmp_path / "data", limits={"headerTimeout": 3})
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", web.port)
        request = (
            b"GET / HTTP/1.1\r\nHost: example.com\r\nX-Padding: "
            + b"a" * 60
            + b"\r\n\r\n"
        )
        served = []
        closed_after = None
        # One header byte per second: the whole request would take over a
        # minute, far past the 3 s header timeout.
        for sent in range(20):
            writer.write(request[sent : sent + 1])
            try:
                await writer.drain()
            except ConnectionError:
                closed_after = sent
                break
            served.append(await fetch_once(web.port))
            try:
                data = await asyncio.wait_for(reader.read(1024), 1.0)
            except TimeoutError:
                continue
            if data.startswith(b"HTTP/1.1 408") or data == b"":
                closed_after = sent
                break
        writer.close()
        assert closed_after is not None, "slow client was never closed"
        assert closed_after < 19
        assert served and all(status == 200 for status in served)
        assert "header timeout (3 s) for 127.0.0.1" in caplog.text
    finally:
        await web.module.stop()


async def test_idle_keep_alive_connection_closed(
    store: Store, tmp_path: Path, site: Path
) -> None:
    await insert_vhost(store, "example.com", site)
    web = await start_web(store, tmp_path / "data", limits={"idleTimeout": 1})
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", web.port)
        writer.write(GET)
        first = await asyncio.wait_for(reader.readuntil(b"body { color: red }\n"), 5)
        assert first.startswith(b"HTTP/1.1 200 OK")
        # Nothing more is sent: the server closes after the idle timeout.
        rest = await asyncio.wait_for(reader.read(), 10)
        assert rest == b""
        writer.close()
    finally:
        await web.module.stop()


async def test_connection_cap_per_worker(
    store: Store, tmp_path: Path, site: Path, caplog: pytest.LogCaptureFixture
) -> None:
    await insert_vhost(store, "example.com", site)
    web = await start_web(store, tmp_path / "data", limits={"maxConnections": 2})
    try:
        held = [await asyncio.open_connection("127.0.0.1", web.port) for _ in range(2)]
        for reader, writer in held:
            writer.write(GET)
            await asyncio.wait_for(reader.readuntil(b"body { color: red }\n"), 5)
        reader, writer = await asyncio.open_connection("127.0.0.1", web.port)
        rejected = await asyncio.wait_for(reader.read(), 5)
        assert rejected.startswith(b"HTTP/1.1 503 ")
        writer.close()
        assert "connection cap 2 reached" in caplog.text
        # Closing one held connection frees a slot.
        held[0][1].close()
        await asyncio.sleep(0.2)
        assert await fetch_once(web.port) == 200
        for _, held_writer in held[1:]:
            held_writer.close()
    finally:
        await web.module.stop()


async def test_oversized_request_line_over_socket(
    store: Store, tmp_path: Path, site: Path
) -> None:
    await insert_vhost(store, "example.com", site)
    web = await start_web(store, tmp_path / "data", limits={"maxRequestLine": 1024})
    try:
        raw = await web.exchange(
            b"GET /" + b"x" * 5000 + b" HTTP/1.1\r\nHost: example.com\r\n\r\n"
        )
        assert raw.startswith(b"HTTP/1.1 414 URI Too Long")
    finally:
        await web.module.stop()


async def test_oversized_headers_over_socket(
    store: Store, tmp_path: Path, site: Path
) -> None:
    await insert_vhost(store, "example.com", site)
    web = await start_web(store, tmp_path / "data", limits={"maxHeaderSize": 2048})
    try:
        cookie = b"Cookie: " + b"c" * 4000 + b"\r\n"
        raw = await web.exchange(
            b"GET / HTTP/1.1\r\nHost: example.com\r\n" + cookie + b"\r\n"
        )
        assert raw.startswith(b"HTTP/1.1 431 ")
    finally:
        await web.module.stop()
