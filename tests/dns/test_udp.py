"""The UDP listener in-process: batches with recvmmsg, and the recvfrom loop."""

from __future__ import annotations

import asyncio
import socket

import dns.message
import dns.rcode
import dns.rdatatype
import pytest

from onestack.dns.server import (
    MAX_UDP_QUERY,
    UDP_BATCH,
    UdpListener,
    bind_udp,
    spread_over_workers,
)
from tests.dns.test_responder import make_responder
from tests.support import free_port

# More than one recvmmsg batch, and more than one wakeup's worth.
BURST = UDP_BATCH * 5 + 7


def exchange(
    port: int, packets: list[bytes], host: str = "127.0.0.1"
) -> list[dns.message.Message]:
    """Send every packet at once from one socket, then read the replies."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as client:
        client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        client.settimeout(5)
        client.bind((host, 0))
        for packet in packets:
            client.sendto(packet, (host, port))
        return [dns.message.from_wire(client.recv(4096)) for _ in packets]


async def serve(batched: bool, host: str = "127.0.0.1") -> tuple[UdpListener, int]:
    port = free_port()
    listener = UdpListener(
        make_responder(),
        bind_udp(host, port),
        asyncio.get_running_loop(),
        batched=batched,
    )
    if batched:
        assert listener.batch is not None  # recvmmsg is there on Linux
    return listener, port


@pytest.mark.parametrize("batched", [True, False])
async def test_burst_answered_each_to_its_id(batched: bool) -> None:
    listener, port = await serve(batched)
    names = ["example.com", "www.example.com", "nothere.example.com", "example.org"]
    queries = []
    for index in range(BURST):
        query = dns.message.make_query(names[index % len(names)], "A")
        query.id = index + 1  # one reply per ID
        queries.append(query)
    try:
        replies = await asyncio.to_thread(
            exchange, port, [query.to_wire() for query in queries]
        )
    finally:
        listener.close()
        listener.close()
    by_id = {reply.id: reply for reply in replies}
    assert len(by_id) == len(queries)
    expected = [dns.rcode.NOERROR, dns.rcode.NOERROR, dns.rcode.NXDOMAIN]
    expected.append(dns.rcode.REFUSED)
    for index, query in enumerate(queries):
        reply = by_id[query.id]
        assert reply.question == query.question
        assert reply.rcode() == expected[index % len(names)]


@pytest.mark.parametrize("batched", [True, False])
async def test_two_clients_get_their_own_replies(batched: bool) -> None:
    listener, port = await serve(batched)
    first = [dns.message.make_query("example.com", "MX") for _ in range(100)]
    second = [dns.message.make_query("www.example.com", "A") for _ in range(100)]
    try:
        one, two = await asyncio.gather(
            asyncio.to_thread(exchange, port, [q.to_wire() for q in first]),
            asyncio.to_thread(exchange, port, [q.to_wire() for q in second]),
        )
    finally:
        listener.close()
    assert sorted(reply.id for reply in one) == sorted(q.id for q in first)
    assert sorted(reply.id for reply in two) == sorted(q.id for q in second)
    assert all(reply.question[0].rdtype == dns.rdatatype.MX for reply in one)
    assert all(reply.question[0].rdtype == dns.rdatatype.A for reply in two)


@pytest.mark.parametrize("batched", [True, False])
async def test_oversized_datagram_gets_formerr(batched: bool) -> None:
    listener, port = await serve(batched)
    query = dns.message.make_query("example.com", "A").to_wire()
    oversized = query + bytes(MAX_UDP_QUERY + 100 - len(query))
    try:
        replies = await asyncio.to_thread(exchange, port, [oversized, query])
    finally:
        listener.close()
    rcodes = {reply.rcode() for reply in replies}
    assert rcodes == {dns.rcode.FORMERR, dns.rcode.NOERROR}
    assert all(reply.id == int.from_bytes(query[:2]) for reply in replies)


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _has_ipv6_loopback(), reason="no IPv6 loopback here")
@pytest.mark.parametrize("batched", [True, False])
async def test_ipv6_clients_answered(batched: bool) -> None:
    listener, port = await serve(batched, "::1")
    queries = [dns.message.make_query("example.com", "A") for _ in range(80)]
    try:
        replies = await asyncio.to_thread(
            exchange, port, [query.to_wire() for query in queries], "::1"
        )
    finally:
        listener.close()
    assert sorted(reply.id for reply in replies) == sorted(q.id for q in queries)
    assert all(reply.rcode() == dns.rcode.NOERROR for reply in replies)


def _interleave(port: int, rounds: int) -> tuple[list[int], list[int]]:
    """Two clients take turns; each first sends a response, which is dropped."""
    dropped = dns.message.make_response(dns.message.make_query("example.com", "A"))
    sent: dict[int, list[int]] = {0: [], 1: []}
    got: dict[int, list[int]] = {0: [], 1: []}
    with (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as one,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as two,
    ):
        clients = (one, two)
        for client in clients:
            client.settimeout(5)
            client.bind(("127.0.0.1", 0))
        for index in range(rounds):
            for number, client in enumerate(clients):
                client.sendto(dropped.to_wire(), ("127.0.0.1", port))
                query = dns.message.make_query("example.com", "A")
                query.id = index * 2 + number + 1
                client.sendto(query.to_wire(), ("127.0.0.1", port))
                sent[number].append(query.id)
        for number, client in enumerate(clients):
            for _ in range(rounds):
                got[number].append(dns.message.from_wire(client.recv(4096)).id)
    assert sorted(got[0]) == sent[0]
    assert sorted(got[1]) == sent[1]
    return got[0], got[1]


@pytest.mark.parametrize("batched", [True, False])
async def test_dropped_packets_do_not_misdirect_replies(batched: bool) -> None:
    listener, port = await serve(batched)
    try:
        await asyncio.to_thread(_interleave, port, UDP_BATCH * 2)
    finally:
        listener.close()


async def test_one_client_spread_over_workers() -> None:
    # Without the BPF program the kernel hashes the client's address and
    # port, so every query from one socket would reach the same listener.
    port = free_port()
    loop = asyncio.get_running_loop()
    listeners = []
    for _ in range(2):
        sock = bind_udp("127.0.0.1", port)
        spread_over_workers(sock, 2)
        listeners.append(UdpListener(make_responder(), sock, loop))
    queries = [
        dns.message.make_query(f"n{index}.example.com", "A") for index in range(200)
    ]
    try:
        replies = await asyncio.to_thread(
            exchange, port, [query.to_wire() for query in queries]
        )
    finally:
        for listener in listeners:
            listener.close()
    assert all(reply.rcode() == dns.rcode.NXDOMAIN for reply in replies)
    cached = [len(listener.responder.cache) for listener in listeners]
    assert sum(cached) == 200
    assert min(cached) > 0
