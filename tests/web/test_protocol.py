"""Raw bytes into one HttpConnection with a fake transport."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest

from onestack.config import HttpLimits
from onestack.web import responses
from onestack.web.accesslog import AccessLog
from onestack.web.files import FileCache, http_date
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


async def test_http2_as_text_is_505(state: ServerState) -> None:
    connection, transport = connect(state)
    connection.data_received(b"GET / HTTP/2.0\r\nHost: example.com\r\n\r\n")
    assert transport.written.startswith(b"HTTP/1.1 505 HTTP Version Not Supported\r\n")
    assert transport.closed


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


class SteppedClocks:
    """The loop clock and the wall clock, moved forward together by the test."""

    def __init__(self, loop_now: float, wall: float) -> None:
        self.loop_now = loop_now
        self.wall = wall

    def advance(self, seconds: float) -> None:
        self.loop_now += seconds
        self.wall += seconds

    def time(self) -> float:
        return self.loop_now


def stepped(
    connection: HttpConnection, monkeypatch: pytest.MonkeyPatch
) -> SteppedClocks:
    clocks = SteppedClocks(1000.0, 1_800_000_000.5)
    monkeypatch.setattr(connection, "loop", clocks)
    monkeypatch.setattr(responses.time, "time", lambda: clocks.wall)
    return clocks


STYLE_REQUEST = b"GET /style.css HTTP/1.1\r\nHost: example.com\r\n\r\n"


def get_once(connection: HttpConnection, transport: FakeTransport) -> Any:
    transport.written.clear()
    connection.data_received(STYLE_REQUEST)
    [response] = parse_responses(bytes(transport.written))
    return response


async def test_ready_response_takes_the_next_seconds_date(
    state: ServerState, monkeypatch: pytest.MonkeyPatch
) -> None:
    connection, transport = connect(state)
    clocks = stepped(connection, monkeypatch)
    key = (b"example.com", b"/style.css")
    first = get_once(connection, transport)
    entry = state.router.fast[key]
    clocks.advance(0.2)
    same_second = get_once(connection, transport)
    assert state.router.fast[key] is entry
    assert same_second.headers["date"] == first.headers["date"]
    # The wall clock passes a whole second: the entry is rebuilt.
    clocks.advance(0.4)
    next_second = get_once(connection, transport)
    assert state.router.fast[key] is not entry
    assert next_second.headers["date"] != first.headers["date"]
    assert next_second.headers["date"] == http_date(1_800_000_001).decode()
    assert next_second.body == first.body
    assert state.stats.deltas[1].requests == 3


async def test_ready_response_follows_a_changed_file(
    state: ServerState, site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    connection, transport = connect(state)
    clocks = stepped(connection, monkeypatch)
    get_once(connection, transport)
    assert get_once(connection, transport).body == b"body { color: red }\n"
    assert connection.repeat_entry is not None
    (site / "style.css").write_text("body { color: blue; margin: 0 }\n")
    clocks.advance(1.5)
    changed = get_once(connection, transport)
    assert changed.body == b"body { color: blue; margin: 0 }\n"
    assert changed.headers["content-length"] == str(len(changed.body))
    clocks.advance(0.1)
    assert get_once(connection, transport).body == changed.body


async def test_ready_responses_dropped_when_vhosts_change(
    state: ServerState, tmp_path: Path
) -> None:
    connection, transport = connect(state)
    get_once(connection, transport)
    assert get_once(connection, transport).status == 200
    # The second read was served from a ready response and is remembered.
    assert connection.repeat_entry is not None
    other_root = tmp_path / "other"
    other_root.mkdir()
    (other_root / "style.css").write_text("p { }\n")
    moved = Vhost(
        id=1,
        domain="example.com",
        names=("example.com",),
        document_root=os.path.realpath(other_root),
        enabled=True,
        ssl=False,
        redirect_to_https=False,
    )
    state.router.set_vhosts(VhostTable.build([moved]))
    assert state.router.fast == {}
    assert get_once(connection, transport).body == b"p { }\n"
    state.router.set_vhosts(VhostTable.build([]))
    assert get_once(connection, transport).status == 404


async def test_stats_taken_while_ready_response_in_use(state: ServerState) -> None:
    connection, transport = connect(state)
    get_once(connection, transport)
    get_once(connection, transport)
    counts = state.stats.take()
    assert counts[1].requests == 2
    assert counts[1].bytes_served == 40
    assert counts[1].last_request > 0
    assert not state.stats.pending()
    get_once(connection, transport)
    assert state.stats.deltas[1].requests == 1
    assert state.stats.take()[1].bytes_served == 20


async def test_repeated_read_skips_parser(
    state: ServerState, monkeypatch: pytest.MonkeyPatch
) -> None:
    connection, transport = connect(state)
    get_once(connection, transport)
    get_once(connection, transport)
    entry = connection.repeat_entry
    assert entry is not None and connection.repeat_data == STYLE_REQUEST

    def no_parsing(data: bytes) -> None:
        raise AssertionError("the parser was used")

    monkeypatch.setattr(connection, "parser", type("P", (), {"feed_data": no_parsing}))
    repeated = get_once(connection, transport)
    assert repeated.status == 200
    assert repeated.body == b"body { color: red }\n"
    assert state.stats.deltas[1].requests == 3


async def test_only_whole_single_requests_are_remembered(state: ServerState) -> None:
    connection, transport = connect(state)
    get_once(connection, transport)
    # Two requests in one read, then one request over two reads.
    connection.data_received(STYLE_REQUEST * 2)
    assert connection.repeat_entry is None
    connection.data_received(STYLE_REQUEST[:20])
    assert connection.repeat_entry is None
    connection.data_received(STYLE_REQUEST[20:])
    assert connection.repeat_entry is None
    # A request whose read also starts the next one.
    connection.data_received(STYLE_REQUEST + b"GET /index.html HTTP/1.1\r\n")
    assert connection.repeat_entry is None
    connection.data_received(b"Host: example.com\r\n\r\n")
    get_once(connection, transport)
    assert connection.repeat_entry is not None
    # A different request after a remembered one is parsed as usual.
    transport.written.clear()
    connection.data_received(b"GET /index.html HTTP/1.1\r\nHost: example.com\r\n\r\n")
    [response] = parse_responses(bytes(transport.written))
    assert response.body == b"<h1>home</h1>\n"
    responses_seen = [r.status for r in parse_responses(bytes(transport.written))]
    assert responses_seen == [200]
    assert state.stats.deltas[1].requests == 8


async def test_ready_responses_written_to_access_log(
    state: ServerState, tmp_path: Path
) -> None:
    state.access_log = AccessLog(tmp_path / "logs", 1 << 20, 1)
    connection, transport = connect(state)
    for _ in range(3):
        get_once(connection, transport)
    connection.data_received(
        b"GET /style.css HTTP/1.1\r\nHost: example.com\r\nUser-Agent: probe\r\n\r\n"
    )
    state.access_log.flush()
    lines = (tmp_path / "logs" / "example.com.access.log").read_text().splitlines()
    assert len(lines) == 4
    assert all('"GET /style.css HTTP/1.1" 200 20 "-" ' in line for line in lines)
    assert lines[2].endswith('"-" "-"')
    assert lines[3].endswith('"-" "probe"')


async def test_large_ready_response_written_in_two_parts(
    state: ServerState, site: Path
) -> None:
    body = bytes(range(256)) * 200
    (site / "big.bin").write_bytes(body)
    connection, transport = connect(state)
    request = b"GET /big.bin HTTP/1.1\r\nHost: example.com\r\n\r\n"
    connection.data_received(request)
    entry = state.router.fast[(b"example.com", b"/big.bin")]
    assert entry.response is None and entry.parts is not None
    connection.data_received(request)
    responses_seen = parse_responses(bytes(transport.written))
    assert [r.status for r in responses_seen] == [200, 200]
    assert responses_seen[1].body == body


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
