"""The HTTP/1.1 connection: an asyncio Protocol over the httptools parser.

One ``HttpConnection`` per TCP (or TLS) connection. Bytes go to the parser,
whose callbacks collect one request at a time; the response to a complete
request is written at once when the connection is idle, or after the one
being streamed (pipelining, RFC 9112 section 9.3.2). Limits on the request line,
the header block, time and connection count are enforced here.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from typing import TYPE_CHECKING

import httptools

from onestack.web.files import REVALIDATE_SECONDS
from onestack.web.responses import (
    STATUS_LINES,
    FastEntry,
    Reply,
    Request,
    respond,
    simple_reply,
)
from onestack.web.transfer import Transfer
from onestack.web.vhost_table import Vhost

if TYPE_CHECKING:
    from onestack.web.server import ServerState

logger = logging.getLogger(__name__)

# Requests parsed ahead of the current response; past this, reading pauses.
MAX_QUEUED_REQUESTS = 64
# Request headers that change the response to a GET of a known file: a
# request with any of them takes the full path through ``respond``.
SPECIAL_HEADERS = frozenset(
    {
        b"connection",
        b"if-match",
        b"if-none-match",
        b"if-modified-since",
        b"if-unmodified-since",
        b"if-range",
        b"range",
    }
)
STATUS_200 = STATUS_LINES[200]


class _LimitExceeded(Exception):
    """Raised inside a parser callback; the status is kept on the connection."""


class HttpConnection(asyncio.Protocol):
    """One client connection."""

    def __init__(self, state: ServerState) -> None:
        self.state = state
        self.limits = state.limits
        self.loop = asyncio.get_running_loop()
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.peer = "-"
        self.peer_bytes = b"-"
        self.closing = False
        # Set once a request is rejected: later bytes are not parsed.
        self.rejected = False
        self.writing_paused = False
        self.reading_paused = False
        self.deadline = 0.0
        self.in_head = False
        self.waiting_first_byte = True
        # The request being parsed.
        self.url = b""
        self.headers: dict[bytes, bytes] = {}
        self.host_count = 0
        self.special = False
        self.head_bytes = 0
        self.started = 0.0
        self.reject_status = 0
        # Requests parsed but not answered, or a status to reject with.
        self.queue: deque[Request | int] = deque()
        self.transfer: Transfer | None = None
        self.close_when_idle = False

    # --- asyncio callbacks ------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        self.peer = peer[0] if peer else "-"
        self.peer_bytes = self.peer.encode("ascii", "replace")
        state = self.state
        if len(state.connections) >= self.limits.maxConnections:
            state.limit_hit("connection cap %d reached", self.limits.maxConnections)
            transport.write(SERVICE_UNAVAILABLE)  # type: ignore[attr-defined]
            transport.close()
            self.closing = True
            return
        state.connections.add(self)
        self.deadline = self.loop.time() + self.limits.headerTimeout

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        self.state.connections.discard(self)
        if self.transfer is not None:
            self.transfer.abort()
            self.transfer = None
        self.queue.clear()

    def pause_writing(self) -> None:
        self.writing_paused = True
        self._pause_reading()

    def resume_writing(self) -> None:
        self.writing_paused = False
        if self.transfer is not None:
            self.transfer.resume()
        elif not self.closing:
            self._resume_reading()

    def data_received(self, data: bytes) -> None:
        if self.closing or self.rejected:
            return
        if self.in_head:
            # A header block spread over reads: bound its total size here,
            # since the parser only reports a header once it is complete.
            self.head_bytes += len(data)
            if self.head_bytes > self.limits.maxRequestLine + self.limits.maxHeaderSize:
                self.state.limit_hit("request head from %s too large", self.peer)
                self._reject(431)
                return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError:
            if self.reject_status:
                self._reject(self.reject_status)
            else:
                logger.exception("HTTP request handling failed for %s", self.peer)
                self._reject(500)
        except httptools.HttpParserUpgrade:
            # No protocol upgrades: answer the request, then close.
            self.close_when_idle = True
            self._close_if_idle()
        except httptools.HttpParserError as error:
            logger.debug("malformed request from %s: %s", self.peer, error)
            self._reject(400)

    def eof_received(self) -> bool | None:
        # Half-close from the client: finish the answers, then close.
        self.close_when_idle = True
        self._close_if_idle()
        return True

    # --- parser callbacks -------------------------------------------------

    def on_message_begin(self) -> None:
        self.in_head = True
        self.url = b""
        self.headers = {}
        self.host_count = 0
        self.special = False
        self.head_bytes = 0
        self.started = self.loop.time()
        self.deadline = self.started + self.limits.headerTimeout

    def on_url(self, url: bytes) -> None:
        self.url += url
        if len(self.url) > self.limits.maxRequestLine:
            self.state.limit_hit("request line from %s too long", self.peer)
            self.reject_status = 414
            raise _LimitExceeded

    def on_header(self, name: bytes, value: bytes) -> None:
        self.head_bytes += len(name) + len(value) + 4
        if self.head_bytes > self.limits.maxHeaderSize:
            self.state.limit_hit("header block from %s too large", self.peer)
            self.reject_status = 431
            raise _LimitExceeded
        name = name.lower()
        if name == b"host":
            self.host_count += 1
        elif name in SPECIAL_HEADERS:
            self.special = True
        headers = self.headers
        if name in headers:
            # Repeated fields combine into one list (RFC 9110 section 5.3).
            headers[name] += b", " + value
        else:
            headers[name] = value

    def on_headers_complete(self) -> None:
        self.in_head = False
        self.deadline = self.loop.time() + self.limits.idleTimeout

    def on_message_complete(self) -> None:
        parser = self.parser
        method = parser.get_method()
        keep_alive = parser.should_keep_alive()
        if (
            method == b"GET"
            and keep_alive
            and not self.special
            and self.host_count == 1
            and self.transfer is None
            and not self.queue
        ):
            entry = self.state.router.fast.get((self.headers[b"host"], self.url))
            if entry is not None:
                now = self.loop.time()
                if now - entry.checked_at < REVALIDATE_SECONDS:
                    self._answer_fast(entry, now)
                    return
        request = Request(
            method,
            self.url,
            parser.get_http_version().encode(),
            self.headers,
            keep_alive,
            self.started,
            self.host_count,
        )
        if self.transfer is None and not self.queue:
            self._answer(request)
            return
        self.queue.append(request)
        if len(self.queue) > MAX_QUEUED_REQUESTS:
            self._pause_reading()

    # --- answering --------------------------------------------------------

    def _answer(self, request: Request) -> None:
        state = self.state
        try:
            reply = respond(state.router, request, self.loop.time())
        except Exception:
            logger.exception(
                "responding to %r from %s failed", request.target, self.peer
            )
            request.keep_alive = False
            reply = simple_reply(state.router, request, 500)
        if reply.segments is None:
            self.transport.write(reply.data)
            self._finished(request, reply)
            return
        self._pause_reading()
        transfer = Transfer(
            self,
            reply.segments,
            state.use_sendfile,
            lambda ok: self._transfer_done(request, reply, ok),
        )
        self.transfer = transfer
        transfer.start()

    def _transfer_done(self, request: Request, reply: Reply, ok: bool) -> None:
        self.transfer = None
        if not ok:
            self._close()
            return
        self._finished(request, reply)
        self._drain_queue()

    def _answer_fast(self, entry: FastEntry, now: float) -> None:
        """Write a ready 200 response: a keep-alive HTTP/1.1 GET of a cached file."""
        body = entry.body
        self.transport.write(
            b"".join(
                (STATUS_200, self.state.router.clock.date_line(), entry.head, body)
            )
        )
        self._record(
            entry.vhost,
            b"GET",
            self.url,
            b"1.1",
            self.headers,
            200,
            len(body),
            self.started,
            now,
        )
        self.deadline = now + self.limits.idleTimeout

    def _finished(self, request: Request, reply: Reply) -> None:
        """Count and log a finished request, then keep or close the connection."""
        now = self.loop.time()
        if reply.vhost is not None:
            self._record(
                reply.vhost,
                request.method,
                request.target,
                request.version,
                request.headers,
                reply.status,
                reply.body_size,
                request.started,
                now,
            )
        if not request.keep_alive:
            self._close()
            return
        self.deadline = now + self.limits.idleTimeout

    def _record(
        self,
        vhost: Vhost,
        method: bytes,
        target: bytes,
        version: bytes,
        headers: dict[bytes, bytes],
        status: int,
        body_size: int,
        started: float,
        now: float,
    ) -> None:
        """Add one finished request to the vhost's stats and access log."""
        wall = time.time()
        delta = self.state.stats.delta_for(vhost.id)
        delta.requests += 1
        delta.bytes_served += body_size
        delta.response_time_ms += (now - started) * 1000.0
        delta.last_request = wall
        log = self.state.access_log
        if log is not None:
            log.buffer_for(vhost.domain).append(
                (
                    self.peer_bytes,
                    wall,
                    method,
                    target,
                    version,
                    status,
                    body_size,
                    headers.get(b"referer"),
                    headers.get(b"user-agent"),
                )
            )

    def _drain_queue(self) -> None:
        while self.queue and self.transfer is None and not self.closing:
            item = self.queue.popleft()
            if isinstance(item, int):
                self._reject(item)
                return
            self._answer(item)
        if self.transfer is None and not self.closing:
            if self.close_when_idle:
                self._close()
            elif not self.writing_paused:
                self._resume_reading()

    def _reject(self, status: int) -> None:
        """Send an error for a request that is malformed or over a limit, and close."""
        if self.closing:
            # Bytes after a "Connection: close" request end up here; ignore them.
            return
        self.rejected = True
        if self.transfer is not None or self.queue:
            self.queue.append(status)
            return
        request = Request(b"GET", b"", b"1.1", {}, False, self.started, 0)
        reply = simple_reply(self.state.router, request, status)
        self.transport.write(reply.data)
        self._close()

    def _close_if_idle(self) -> None:
        if self.transfer is None and not self.queue:
            self._close()

    def _close(self) -> None:
        self.closing = True
        self.state.connections.discard(self)
        self.transport.close()

    def _pause_reading(self) -> None:
        if not self.reading_paused and not self.transport.is_closing():
            self.reading_paused = True
            self.transport.pause_reading()

    def _resume_reading(self) -> None:
        if self.reading_paused and not self.transport.is_closing():
            self.reading_paused = False
            self.transport.resume_reading()

    # --- called by the server ---------------------------------------------

    def touch(self) -> None:
        """Push the deadline back while a streamed body makes progress."""
        self.deadline = self.loop.time() + self.limits.idleTimeout

    def check_deadline(self, now: float) -> None:
        """Close the connection if its header or idle timeout has passed."""
        if now < self.deadline or self.closing:
            return
        if self.in_head:
            self.state.limit_hit(
                "header timeout (%.0f s) for %s", self.limits.headerTimeout, self.peer
            )
            self._reject_now(408)
        elif self.transfer is not None or self.queue:
            self.state.limit_hit("idle timeout while sending to %s", self.peer)
            self.transport.abort()
        else:
            logger.debug("idle timeout for %s", self.peer)
            self._close()

    def _reject_now(self, status: int) -> None:
        self.queue.clear()
        request = Request(b"GET", b"", b"1.1", {}, False, self.started, 0)
        self.transport.write(simple_reply(self.state.router, request, status).data)
        self._close()


SERVICE_UNAVAILABLE = (
    b"HTTP/1.1 503 Service Unavailable\r\nServer: OneStack\r\n"
    b"Content-Length: 0\r\nConnection: close\r\n\r\n"
)
