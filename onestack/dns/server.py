"""The UDP and TCP listeners of the authoritative server."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket

from onestack.dns.responder import Responder

logger = logging.getLogger(__name__)

# RFC 1035 section 4.2.2: each TCP message is preceded by a two-octet length.
LENGTH_BYTES = 2
# Queries read from one TCP connection before it must wait for its replies
# to be written; bounds the memory one client can make us hold.
MAX_TCP_BACKLOG = 64 * 1024
# Socket buffers for the UDP listener, so that a burst of queries waits in
# the kernel while the worker is busy instead of being dropped.
UDP_BUFFER_BYTES = 4 * 1024 * 1024


class UdpServer(asyncio.DatagramProtocol):
    """Answers each datagram in place; nothing is queued or retried."""

    # NOTE: bench/dns measured medians of 0.32 to 0.49 of NSD's queries/s on
    # a loaded 2-vCPU VM, at 1.5 times NSD's CPU time per query. The worker
    # was mostly idle, and the cause of the gap is not established.

    def __init__(self, responder: Responder) -> None:
        self.responder = responder
        self.exact = responder.exact
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        transport = self.transport
        if transport is None:
            return
        tail = self.exact.get(data[2:])
        if tail is not None:
            transport.sendto(data[:2] + tail, addr)
            return
        for reply in self.responder.respond(data, addr[0], False):
            transport.sendto(reply, addr)

    def error_received(self, exc: Exception) -> None:
        # ICMP errors for earlier replies (a client that went away).
        logger.debug("UDP error: %s", exc)


class TcpLimits:
    """Shared by the TCP connections of one listener: the open count and cap."""

    def __init__(self, max_connections: int, idle_timeout: float) -> None:
        self.max_connections = max_connections
        self.idle_timeout = idle_timeout
        self.open = 0


class TcpConnection(asyncio.Protocol):
    """One TCP client: length-prefixed queries in, responses out (RFC 7766)."""

    def __init__(self, responder: Responder, limits: TcpLimits) -> None:
        self.responder = responder
        self.limits = limits
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.peer = "?"
        self.idle: asyncio.TimerHandle | None = None
        self.counted = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        self.peer = peer[0] if peer else "?"
        if self.limits.open >= self.limits.max_connections:
            logger.warning(
                "TCP connection from %s closed: %d connections open",
                self.peer,
                self.limits.open,
            )
            transport.abort()  # type: ignore[attr-defined]
            return
        self.limits.open += 1
        self.counted = True
        self._arm_idle()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.counted:
            self.limits.open -= 1
            self.counted = False
        if self.idle is not None:
            self.idle.cancel()
        self.transport = None

    def _arm_idle(self) -> None:
        if self.idle is not None:
            self.idle.cancel()
        loop = asyncio.get_running_loop()
        self.idle = loop.call_later(self.limits.idle_timeout, self._idle_timeout)

    def _idle_timeout(self) -> None:
        # RFC 7766 section 6.2.3: the server closes idle connections.
        if self.transport is not None:
            logger.debug("TCP connection from %s idle, closing", self.peer)
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        transport = self.transport
        if transport is None:
            return
        self.buffer += data
        if len(self.buffer) > MAX_TCP_BACKLOG + 65537:
            logger.warning("TCP client %s sent too much unanswered data", self.peer)
            transport.abort()
            return
        self._arm_idle()
        while len(self.buffer) >= LENGTH_BYTES:
            length = int.from_bytes(self.buffer[:LENGTH_BYTES])
            if len(self.buffer) < LENGTH_BYTES + length:
                break
            packet = bytes(self.buffer[LENGTH_BYTES : LENGTH_BYTES + length])
            del self.buffer[: LENGTH_BYTES + length]
            replies = self.responder.respond(packet, self.peer, True)
            if not replies and length:
                # Nothing sensible to send to garbage: end the connection.
                transport.close()
                return
            for reply in replies:
                transport.write(len(reply).to_bytes(LENGTH_BYTES) + reply)


async def start_listeners(
    responder: Responder,
    host: str,
    port: int,
    limits: TcpLimits,
) -> tuple[asyncio.DatagramTransport, asyncio.AbstractServer]:
    """Bind UDP and TCP on ``host``:``port`` with SO_REUSEPORT."""
    loop = asyncio.get_running_loop()
    udp, _ = await loop.create_datagram_endpoint(
        lambda: UdpServer(responder), local_addr=(host, port), reuse_port=True
    )
    sock = udp.get_extra_info("socket")
    for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
        # The kernel caps the size at net.core.rmem_max / wmem_max.
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, option, UDP_BUFFER_BYTES)
    try:
        tcp = await loop.create_server(
            lambda: TcpConnection(responder, limits), host, port, reuse_port=True
        )
    except BaseException:
        udp.close()
        raise
    return udp, tcp
