"""The responder fed raw packets, and the module's TCP limits, in-process."""

from __future__ import annotations

import asyncio
from pathlib import Path

import dns.edns
import dns.flags
import dns.message
import dns.opcode
import dns.rcode
import dns.rdatatype
import pytest

from onestack.config import DnsConfig
from onestack.dns import zonefile
from onestack.dns.answers import CompiledZone, ZoneData, ZoneTable
from onestack.dns.module import DnsModule
from onestack.dns.responder import Responder
from onestack.modules import WorkerContext
from onestack.store import Store
from tests.dns.zones import example_zone
from tests.support import free_port


def make_responder(max_cached: int = 1000) -> Responder:
    parsed = zonefile.parse("example.com", example_zone())
    assert parsed.soa is not None
    zones = ZoneTable()
    zones.put(CompiledZone(ZoneData("example.com", 3600, parsed.soa, parsed.records)))
    return Responder(zones, max_cached)


def ask(
    responder: Responder, query: dns.message.Message, tcp: bool = False
) -> dns.message.Message:
    replies = responder.respond(query.to_wire(), "127.0.0.1", tcp)
    assert len(replies) == 1
    return dns.message.from_wire(replies[0])


def test_cache_bounded_under_random_names() -> None:
    responder = make_responder(max_cached=100)
    for index in range(1000):
        reply = ask(responder, dns.message.make_query(f"r{index}.example.com", "A"))
        assert reply.rcode() == dns.rcode.NXDOMAIN
    assert len(responder.cache) == 100


def test_cached_answer_patched_per_query() -> None:
    responder = make_responder()
    first = dns.message.make_query("WWW.example.com", "CNAME")
    second = dns.message.make_query("www.EXAMPLE.com", "CNAME")
    second.flags &= ~dns.flags.RD
    reply_one = ask(responder, first)
    reply_two = ask(responder, second)
    assert len(responder.cache) == 1
    assert reply_one.id == first.id
    assert reply_two.id == second.id
    assert reply_one.flags & dns.flags.RD
    assert not reply_two.flags & dns.flags.RD
    assert reply_two.question[0].name.to_text() == "www.EXAMPLE.com."
    assert reply_two.answer[0].name.to_text() == "www.EXAMPLE.com."


def test_trailing_bytes_get_formerr() -> None:
    responder = make_responder()
    wire = dns.message.make_query("example.com", "A").to_wire()
    replies = responder.respond(wire + b"junk", "127.0.0.1", False)
    assert len(replies) == 1
    assert replies[0][:2] == wire[:2]
    assert replies[0][3] & 0x0F == dns.rcode.FORMERR


def test_edns_options_answered() -> None:
    responder = make_responder()
    cookie = dns.edns.GenericOption(dns.edns.OptionType.COOKIE, b"12345678")
    query = dns.message.make_query("example.com", "A", use_edns=0, options=[cookie])
    reply = ask(responder, query)
    assert reply.rcode() == dns.rcode.NOERROR
    assert reply.payload == 1232
    assert [rrset.rdtype for rrset in reply.answer] == [dns.rdatatype.A]


def test_update_opcode_not_implemented() -> None:
    responder = make_responder()
    query = dns.message.make_query("example.com", "SOA")
    query.set_opcode(dns.opcode.UPDATE)
    assert ask(responder, query).rcode() == dns.rcode.NOTIMP


def test_response_packets_dropped() -> None:
    responder = make_responder()
    query = dns.message.make_query("example.com", "A")
    query.flags |= dns.flags.QR
    assert responder.respond(query.to_wire(), "127.0.0.1", False) == []
    assert responder.respond(b"\x00\x01", "127.0.0.1", False) == []


def test_short_garbage_gets_formerr() -> None:
    responder = make_responder()
    replies = responder.respond(
        b"\x12\x34\x01\x00" + b"\x00" * 8 + b"\xff\xff", "127.0.0.1", False
    )
    assert len(replies) == 1
    assert replies[0][:2] == b"\x12\x34"
    assert replies[0][3] & 0x0F == dns.rcode.FORMERR


def test_transfer_refused_without_allow_list() -> None:
    responder = make_responder()
    from onestack.dns.transfer import Transfers

    responder.transfer = Transfers(responder.zones)
    query = dns.message.make_query("example.com", dns.rdatatype.AXFR)
    assert ask(responder, query, tcp=True).rcode() == dns.rcode.REFUSED
    other = dns.message.make_query("example.org", dns.rdatatype.AXFR)
    assert ask(responder, other, tcp=True).rcode() == dns.rcode.NOTAUTH


async def test_tcp_connection_cap_and_idle_timeout(tmp_path: Path) -> None:
    store = Store(f"sqlite+aiosqlite:///{tmp_path / 'test.db'}")
    await store.migrate()
    port = free_port()
    config = DnsConfig(
        enabled=True,
        host="127.0.0.1",
        port=port,
        maxTcpConnections=2,
        tcpIdleTimeout=0.5,
    )
    module = DnsModule(config, WorkerContext(tmp_path, store, events=None))
    await module.start()
    try:
        first = await asyncio.open_connection("127.0.0.1", port)
        second = await asyncio.open_connection("127.0.0.1", port)
        third_reader, third_writer = await asyncio.open_connection("127.0.0.1", port)
        # Past the cap the connection is closed at once.
        assert await asyncio.wait_for(third_reader.read(), 5) == b""
        third_writer.close()

        reader, writer = first
        query = dns.message.make_query("example.com", "A").to_wire()
        writer.write(len(query).to_bytes(2) + query)
        length = int.from_bytes(await asyncio.wait_for(reader.readexactly(2), 5))
        reply = dns.message.from_wire(await reader.readexactly(length))
        assert reply.rcode() == dns.rcode.REFUSED  # no zones stored
        # Idle past the timeout: the server closes the connection.
        assert await asyncio.wait_for(reader.read(), 5) == b""
        for _, w in (first, second):
            w.close()
    finally:
        await module.stop()
        await module.stop()
        await store.close()


@pytest.mark.parametrize("qtype", ["A", "TXT", "MX"])
def test_tcp_answer_never_truncated(qtype: str) -> None:
    responder = make_responder()
    query = dns.message.make_query("big.example.com", qtype)
    reply = ask(responder, query, tcp=True)
    assert not reply.flags & dns.flags.TC
