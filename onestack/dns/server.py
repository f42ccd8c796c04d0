"""The UDP and TCP listeners of the authoritative server."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import ctypes
import logging
import socket
import struct
import sys
from typing import Any

from onestack.dns.mmsg import DatagramBatch
from onestack.dns.responder import EDNS_UDP_SIZE, Responder, formerr

logger = logging.getLogger(__name__)

# RFC 1035 section 4.2.2: each TCP message is preceded by a two-octet length.
LENGTH_BYTES = 2
# Queries read from one TCP connection before it must wait for its replies
# to be written; bounds the memory one client can make us hold.
MAX_TCP_BACKLOG = 64 * 1024
# Socket buffers for the UDP listener, so that a burst of queries waits in
# the kernel while the worker is busy instead of being dropped.
UDP_BUFFER_BYTES = 4 * 1024 * 1024
# Largest UDP query read. Real queries are a few hundred octets, and reading
# into a small buffer costs less per datagram than into 64 KiB. A longer
# datagram is cut to this plus one octet and answered with FORMERR.
MAX_UDP_QUERY = 4096
# Datagrams read per recvmmsg, and batches (or, without recvmmsg, times
# that many datagrams) read per wakeup before the loop turns to other work.
UDP_BATCH = 64
UDP_ROUNDS = 4
# Replies held while the send buffer is full; more are dropped, as the
# network would drop them.
MAX_PENDING_REPLIES = 4096
# Linux <asm-generic/socket.h> and <linux/filter.h>: attach a classic BPF
# program choosing the SO_REUSEPORT socket, and the instructions it uses.
SO_ATTACH_REUSEPORT_CBPF = 51
SKF_AD_OFF = -0x1000
SKF_AD_RANDOM = 56
BPF_LD_W_ABS = 0x20  # A = 32-bit word at k (an ancillary value here)
BPF_ALU_MOD_K = 0x94  # A = A % k
BPF_RET_A = 0x16  # return A


class UdpListener:
    """Reads queries from a non-blocking UDP socket in batches and answers them.

    On Linux one reader callback reads up to ``UDP_BATCH`` datagrams with
    one ``recvmmsg`` and sends their replies with one ``sendmmsg`` (see
    ``mmsg``), for up to ``UDP_ROUNDS`` batches per wakeup. Elsewhere it
    reads them one by one with ``recvfrom`` and answers each with
    ``sendto``. Either costs less CPU per query than a ``DatagramProtocol``
    (one callback, one address conversion and a context copy per datagram).
    """

    # NOTE: on a loaded 2-vCPU VM this still costs 1.2 to 1.8 times NSD's CPU
    # time per query. perf puts a third of the worker's time in context
    # switches after sendmmsg wakes the client, against a tenth for NSD; why
    # a Python worker pays more per switch is not established.

    def __init__(
        self,
        responder: Responder,
        sock: socket.socket,
        loop: asyncio.AbstractEventLoop,
        batched: bool = True,
    ) -> None:
        self.responder = responder
        self.exact = responder.exact
        self.sock = sock
        self.fd = sock.fileno()
        self.loop = loop
        self.pending: collections.deque[tuple[bytes, Any]] = collections.deque()
        self.dropped = 0
        self.closed = False
        self.batch = (
            DatagramBatch.create(sock, UDP_BATCH, MAX_UDP_QUERY + 1, EDNS_UDP_SIZE)
            if batched
            else None
        )
        if self.batch is None:
            loop.add_reader(self.fd, self._readable)
        else:
            loop.add_reader(self.fd, self._read_batches)

    def _read_batches(self) -> None:
        batch = self.batch
        assert batch is not None
        fd = self.fd
        exact = self.exact
        in_view, out_view = batch.in_view, batch.out_view
        inbuf, outbuf = batch.inbuf, batch.outbuf
        in_slot, out_slot = batch.in_slot, batch.out_slot
        aim = batch.aim
        for _ in range(UDP_ROUNDS):
            try:
                lengths = batch.receive(fd)
            except OSError as exc:
                logger.debug("UDP error: %s", exc)
                return
            if not lengths:
                return
            self.responder.queries += len(lengths)
            # (address slot, reply length) per out slot, and replies that
            # did not fit one.
            targets: list[tuple[int, int]] = []
            others: list[tuple[int, bytes]] = []
            for index, length in enumerate(lengths):
                start = index * in_slot
                tail = exact.get(bytes(in_view[start + 2 : start + length]))
                if tail is not None:
                    size = len(tail) + 2
                    slot = len(targets)
                    out = slot * out_slot
                    outbuf[out] = inbuf[start]  # the query's ID
                    outbuf[out + 1] = inbuf[start + 1]
                    outbuf[out + 2 : out + size] = tail
                    aim(slot, index, size)
                    targets.append((index, size))
                    continue
                data = bytes(in_view[start : start + length])
                if length > MAX_UDP_QUERY:
                    reply = formerr(data)
                    replies = [] if reply is None else [reply]
                else:
                    peer = batch.address(index)[0]
                    replies = self.responder.respond(data, peer, False)
                for reply in replies:
                    size = len(reply)
                    if size > out_slot or len(targets) >= batch.size:
                        others.append((index, reply))
                        continue
                    out = len(targets) * out_slot
                    out_view[out : out + size] = reply
                    aim(len(targets), index, size)
                    targets.append((index, size))
            sent = 0
            if targets:
                try:
                    sent = batch.send(fd, len(targets))
                except OSError as exc:
                    logger.debug("UDP sendmmsg failed: %s", exc)
            # Whatever sendmmsg left (a full buffer, an error for one
            # address) goes out one by one, or waits for the socket.
            for slot in range(sent, len(targets)):
                index, size = targets[slot]
                out = slot * out_slot
                others.append((index, bytes(out_view[out : out + size])))
            for index, reply in others:
                self._send(reply, batch.address(index))

    def _readable(self) -> None:
        recvfrom = self.sock.recvfrom
        sendto = self.sock.sendto
        exact = self.exact
        for _ in range(UDP_BATCH * UDP_ROUNDS):
            try:
                data, addr = recvfrom(MAX_UDP_QUERY + 1)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                # ICMP errors for earlier replies (a client that went away).
                logger.debug("UDP error: %s", exc)
                continue
            self.responder.queries += 1
            tail = exact.get(data[2:])
            if tail is None or self.pending:
                self._answer(data, addr, tail)
                continue
            try:
                sendto(data[:2] + tail, addr)
            except OSError:
                self._answer(data, addr, tail)

    def _answer(self, data: bytes, addr: Any, tail: bytes | None) -> None:
        """Answer off the common path: a cache miss, or a send that failed."""
        if tail is not None:
            replies = [data[:2] + tail]
        elif len(data) > MAX_UDP_QUERY:
            reply = formerr(data)
            replies = [] if reply is None else [reply]
        else:
            replies = self.responder.respond(data, addr[0], False)
        for reply in replies:
            self._send(reply, addr)

    def _send(self, reply: bytes, addr: Any) -> None:
        if self.pending:
            self._hold(reply, addr)
            return
        try:
            self.sock.sendto(reply, addr)
        except (BlockingIOError, InterruptedError):
            self._hold(reply, addr)
        except OSError as exc:
            logger.debug("UDP send to %s failed: %s", addr[0], exc)

    def _hold(self, reply: bytes, addr: Any) -> None:
        """Keep a reply until the socket is writable again (bounded)."""
        if len(self.pending) >= MAX_PENDING_REPLIES:
            self.dropped += 1
            if self.dropped % MAX_PENDING_REPLIES == 1:
                logger.warning(
                    "UDP send buffer full: %d replies dropped so far", self.dropped
                )
            return
        if not self.pending:
            self.loop.add_writer(self.sock.fileno(), self._writable)
        self.pending.append((reply, addr))

    def _writable(self) -> None:
        pending = self.pending
        sendto = self.sock.sendto
        while pending:
            reply, addr = pending[0]
            try:
                sendto(reply, addr)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                logger.debug("UDP send to %s failed: %s", addr[0], exc)
            pending.popleft()
        self.loop.remove_writer(self.sock.fileno())

    def close(self) -> None:
        """Stop reading and close the socket; safe to call twice."""
        if self.closed:
            return
        self.closed = True
        self.loop.remove_reader(self.sock.fileno())
        if self.pending:
            self.loop.remove_writer(self.sock.fileno())
            self.pending.clear()
        self.sock.close()


def bind_udp(host: str, port: int) -> socket.socket:
    """Bind a non-blocking UDP socket with SO_REUSEPORT and large buffers."""
    infos = socket.getaddrinfo(
        host, port, type=socket.SOCK_DGRAM, flags=socket.AI_PASSIVE
    )
    error: OSError | None = None
    for family, kind, proto, _, address in infos:
        sock = socket.socket(family, kind, proto)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
                # The kernel caps the size at net.core.rmem_max / wmem_max.
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, option, UDP_BUFFER_BYTES)
            sock.setblocking(False)
            sock.bind(address)
        except OSError as exc:
            sock.close()
            error = exc
            continue
        return sock
    raise error or OSError(f"invalid host {host!r}: no address to bind")


def spread_over_workers(sock: socket.socket, workers: int) -> None:
    """Send each UDP query to a random worker's socket, not one per client.

    By default the kernel picks the SO_REUSEPORT socket by a hash of the
    client's address and port, so a few busy client sockets can land all on
    one worker. A classic BPF program on the group (SO_ATTACH_REUSEPORT_CBPF)
    returns a random socket index per datagram instead. While a worker
    restarts, an index past the open sockets makes the kernel fall back to
    the hash.
    """
    if workers < 2 or not sys.platform.startswith("linux"):
        return
    program = b"".join(
        struct.pack("=HBBI", code, 0, 0, k & 0xFFFFFFFF)
        for code, k in (
            (BPF_LD_W_ABS, SKF_AD_OFF + SKF_AD_RANDOM),
            (BPF_ALU_MOD_K, workers),
            (BPF_RET_A, 0),
        )
    )
    instructions = ctypes.create_string_buffer(program, len(program))
    fprog = struct.pack("@HP", len(program) // 8, ctypes.addressof(instructions))
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, fprog)
    except OSError as exc:
        logger.warning("UDP queries spread by client address only: %s", exc)


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
            self.responder.queries += 1
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
    workers: int = 1,
) -> tuple[UdpListener, asyncio.AbstractServer]:
    """Bind UDP and TCP on ``host``:``port`` with SO_REUSEPORT."""
    loop = asyncio.get_running_loop()
    sock = bind_udp(host, port)
    spread_over_workers(sock, workers)
    udp = UdpListener(responder, sock, loop)
    try:
        tcp = await loop.create_server(
            lambda: TcpConnection(responder, limits), host, port, reuse_port=True
        )
    except BaseException:
        udp.close()
        raise
    return udp, tcp
