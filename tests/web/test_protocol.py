"""Raw bytes into one HttpConnection with a fake transport."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest

from onestack.config import HttpLimits
from onestack.web.files import FileCache
from onestack.web.protocol import HttpConnection
from onestack.web.responses import Router
from onestack.web.server import ServerState
from onestack.web.vhost_table import Vhost, VhostTable
from tests.web.conftest import parse_responses


class FakeTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written = bytearray()
        self.closed = False
        self.paused = False

    def write(self, data: Any) -> None:
        assert not self.closed, "write after close"
        self.written += data

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        self.paused = True

    def resume_reading(self) -> None:
        self.paused = False

    def get_write_buffer_size(self) -> int:
        return 0

    def set_write_buffer_limits(
        self, high: int | None = None, low: int | None = None
    ) -> None:
        pass

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 40000) if name == "peername" else default


def make_state(root: Path, **limits: Any) -> ServerState:
    vhost = Vhost(
        id=1,
        domain="example.com",
        names=("example.com", "www.example.com"),
        document_root=os.path.realpath(root),
        enabled=True,
        ssl=False,
        redirect_to_https=False,
    )
    router = Router(
        VhostTable.build([vhost]),
        FileCache(),
        challenge_dir=root / "no-challenges",
        is_tls=False,
        https_port=8443,
    )
    return ServerState(HttpLimits(**limits), router, None, use_sendfile=True)


def connect(state: ServerState) -> tuple[HttpConnection, FakeTransport]:
    connection = HttpConnection(state)
    transport = FakeTransport()
    connection.connection_made(transport)
    return connection, transport


@pytest.fixture
def state(site: Path) -> ServerState:
    return make_state(site)


async def test_get_answers_file(state: ServerState) -> None:
    connection, transport = connect(state)
    connection.data_received(b"GET /style.css HTTP/1.1\r\nHost: example.com\r\n\r\n")
    [response] = parse_responses(bytes(transport.written))
    assert response.status == 200
    assert response.body == b"body { color: red }\n"
    assert response.headers["content-type"] == "text/css; charset=utf-8"
    assert response.headers["content-length"] == "20"
    assert response.headers["server"] == "OneStack"
    assert response.headers["date"].endswith(" GMT")
    assert not transport.closed


async def test_pipelined_requests_in_one_read(state: ServerState) -> None:
    connection, transport = connect(state)
    connection.data_received(
        b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"
        b"HEAD /style.css HTTP/1.1\r\nHost: example.com\r\n\r\n"
        b"GET /about/ HTTP/1.1\r\nHost: example.com\r\n\r\n"
    )
    raw = bytes(transport.written)
    first, rest = raw.split(b"<h1>home</h1>\n", 1)
    head_answer, third = rest.split(b"\r\n\r\n", 1)
    assert first.startswith(b"HTTP/1.1 200 OK")
    assert head_answer.startswith(b"HTTP/1.1 200 OK")
    assert b"Content-Length: 20" in head_answer
    [about] = parse_responses(third)
    assert about.body == b"<h1>about</h1>\n"


async def test_request_split_across_reads(state: ServerState) -> None:
    connection, transport = connect(state)
    request = b"GET /style.css HTTP/1.1\r\nHost: example.com\r\n\r\n"
    for index in range(len(request)):
        connection.data_received(request[index : index + 1])
    [response] = parse_responses(bytes(transport.written))
    assert response.status == 200


async def test_connection_close_honoured(state: ServerState) -> None:
    connection, transport = connect(state)
    connection.data_received(
        b"GET / HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n"
        b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"
    )
    responses = parse_responses(bytes(transport.written))
    assert len(responses) == 1
    assert responses[0].headers["connection"] == "close"
    assert transport.closed


async def test_http10_closes_without_keep_alive(state: ServerState) -> None:
    connection, transport = connect(state)
    connection.data_received(b"GET / HTTP/1.0\r\nHost: example.com\r\n\r\n")
    assert transport.closed


async def test_http10_keep_alive_kept(state: ServerState) -> None:
    connection, transport = connect(state)
    connection.data_received(
        b"GET / HTTP/1.0\r\nHost: example.com\r\nConnection: keep-alive\r\n\r\n"
    )
    assert b"Connection: keep-alive\r\n" in transport.written
    assert not transport.closed


async def test_malformed_request_is_400(state: ServerState) -> None:
    connection, transport = connect(state)
    connection.data_received(b"GET / HTTP/1.1\r\nHost example.com\r\n\r\n")
    assert transport.written.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert transport.closed


async def test_garbage_is_400(state: ServerState) -> None:
    connection, transport = connect(state)
    connection.data_received(b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03")
    assert transport.written.startswith(b"HTTP/1.1 400 ")
    assert transport.closed


async def test_missing_host_is_400(state: ServerState) -> None:
    connection, transport = connect(state)
    connection.data_received(b"GET / HTTP/1.1\r\n\r\n")
    assert transport.written.startswith(b"HTTP/1.1 400 ")


async def test_two_host_headers_are_400(state: ServerState) -> None:
    connection, transport = connect(state)
    connection.data_received(
        b"GET / HTTP/1.1\r\nHost: example.com\r\nHost: other.com\r\n\r\n"
    )
    assert transport.written.startswith(b"HTTP/1.1 400 ")


async def test_long_request_line_is_414(
    site: Path, caplog: pytest.LogCaptureFixture
) -> None:
    state = make_state(site, maxRequestLine=256)
    connection, transport = connect(state)
    connection.data_received(
        b"GET /" + b"a" * 300 + b" HTTP/1.1\r\nHost: example.com\r\n\r\n"
    )
    assert transport.written.startswith(b"HTTP/1.1 414 URI Too Long\r\n")
    assert transport.closed
    assert "request line from 127.0.0.1 too long" in caplog.text


async def test_long_request_line_in_pieces_is_414(site: Path) -> None:
    state = make_state(site, maxRequestLine=256)
    connection, transport = connect(state)
    connection.data_received(b"GET /")
    for _ in range(10):
        connection.data_received(b"a" * 100)
    assert transport.written.startswith(b"HTTP/1.1 414 ")


async def test_large_header_block_is_431(
    site: Path, caplog: pytest.LogCaptureFixture
) -> None:
    state = make_state(site, maxHeaderSize=1024)
    connection, transport = connect(state)
    headers = b"".join(b"X-Filler-%d: %s\r\n" % (i, b"v" * 100) for i in range(20))
    connection.data_received(
        b"GET / HTTP/1.1\r\nHost: example.com\r\n" + headers + b"\r\n"
    )
    assert transport.written.startswith(
        b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
    )
    assert transport.closed
    assert "header block from 127.0.0.1 too large" in caplog.text


async def test_endless_header_value_is_431(site: Path) -> None:
    state = make_state(site, maxHeaderSize=1024, maxRequestLine=256)
    connection, transport = connect(state)
    connection.data_received(b"GET / HTTP/1.1\r\nHost: example.com\r\nX-Long: ")
    for _ in range(100):
        if transport.closed:
            break
        connection.data_received(b"v" * 100)
    assert transport.written.startswith(b"HTTP/1.1 431 ")
    assert transport.closed


async def test_other_methods_are_405_with_allow(state: ServerState) -> None:
    for method in (b"POST", b"PUT", b"DELETE", b"OPTIONS", b"PATCH"):
        connection, transport = connect(state)
        connection.data_received(
            method + b" / HTTP/1.1\r\nHost: example.com\r\nContent-Length: 0\r\n\r\n"
        )
        [response] = parse_responses(bytes(transport.written))
        assert response.status == 405, method
        assert response.headers["allow"] == "GET, HEAD"


async def test_absolute_form_target_uses_its_host(state: ServerState) -> None:
    connection, transport = connect(state)
    connection.data_received(
        b"GET http://www.example.com/style.css HTTP/1.1\r\nHost: unknown.test\r\n\r\n"
    )
    [response] = parse_responses(bytes(transport.written))
    assert response.status == 200


async def test_header_timeout_closes_with_408(site: Path) -> None:
    state = make_state(site, headerTimeout=5)
    connection, transport = connect(state)
    connection.data_received(b"GET / HTTP/1.1\r\nHost: exa")
    connection.check_deadline(connection.loop.time() + 1)
    assert not transport.closed
    connection.check_deadline(connection.loop.time() + 6)
    assert transport.written.startswith(b"HTTP/1.1 408 ")
    assert transport.closed


async def test_idle_timeout_closes_quietly(site: Path) -> None:
    state = make_state(site, idleTimeout=3)
    connection, transport = connect(state)
    connection.data_received(b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n")
    answered = len(transport.written)
    connection.check_deadline(connection.loop.time() + 2)
    assert not transport.closed
    connection.check_deadline(connection.loop.time() + 4)
    assert transport.closed
    assert len(transport.written) == answered


async def test_connection_cap_answers_503(
    site: Path, caplog: pytest.LogCaptureFixture
) -> None:
    state = make_state(site, maxConnections=2)
    connect(state)
    connect(state)
    _, third = connect(state)
    assert third.written.startswith(b"HTTP/1.1 503 ")
    assert third.closed
    assert len(state.connections) == 2
    assert "connection cap 2 reached" in caplog.text


async def test_closed_connection_frees_its_slot(site: Path) -> None:
    state = make_state(site, maxConnections=1)
    first, _ = connect(state)
    first.connection_lost(None)
    _, second = connect(state)
    assert not second.closed


async def test_repeated_get_uses_ready_response(state: ServerState) -> None:
    connection, transport = connect(state)
    request = b"GET /style.css HTTP/1.1\r\nHost: example.com\r\n\r\n"
    connection.data_received(request)
    assert (b"example.com", b"/style.css") in state.router.fast
    connection.data_received(request + request)
    responses = parse_responses(bytes(transport.written))
    assert [r.status for r in responses] == [200, 200, 200]
    assert responses[2].body == b"body { color: red }\n"
    assert responses[2].headers == responses[0].headers | {
        "date": responses[2].headers["date"]
    }
    assert state.stats.deltas[1].requests == 3
    assert state.stats.deltas[1].bytes_served == 60


async def test_conditional_get_skips_ready_response(state: ServerState) -> None:
    connection, transport = connect(state)
    connection.data_received(b"GET /style.css HTTP/1.1\r\nHost: example.com\r\n\r\n")
    etag = parse_responses(bytes(transport.written))[0].headers["etag"].encode()
    transport.written.clear()
    connection.data_received(
        b"GET /style.css HTTP/1.1\r\nHost: example.com\r\nIf-None-Match: %s\r\n\r\n"
        % etag
    )
    [response] = parse_responses(bytes(transport.written))
    assert response.status == 304
