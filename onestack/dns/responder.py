"""Turn query packets into response packets, from a cache of ready answers.

The common query (RFC 1035 section 4.1: one question, no answer or authority
records, at most an EDNS OPT record) is read here by hand. Its answer's wire
bytes are built once with dnspython and cached per (lowercased qname, qtype
and qclass, EDNS present, DO bit); a later query only patches in its ID, its
RD and CD bits and the question name in its own case, which compression
pointers in the answer then refer to. Anything unusual takes the slow path
through ``dns.message.from_wire``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import dns.edns
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from onestack.dns.answers import Resolution, ZoneTable

logger = logging.getLogger(__name__)

# RFC 1035 section 4.2.1: without EDNS a UDP message is at most 512 octets.
CLASSIC_UDP_SIZE = 512
# The EDNS payload size recommended by DNS Flag Day 2020 to avoid IP
# fragmentation; it caps what we send over UDP whatever the client offers.
EDNS_UDP_SIZE = 1232
MAX_QNAME_WIRE = 255  # RFC 1035 section 3.1
HEADER_ONE_QUESTION = b"\x00\x01\x00\x00\x00\x00\x00\x00"
HEADER_ONE_QUESTION_OPT = b"\x00\x01\x00\x00\x00\x00\x00\x01"
OPT_TYPE = b"\x00\x29"
DO_BIT = 0x80  # high bit of the EDNS flags' first octet (RFC 3225)
TRANSFER_QTYPES = frozenset({b"\x00\xfb", b"\x00\xfc"})  # IXFR, AXFR


@dataclass(frozen=True)
class Answer:
    """A cached response: full wire bytes and, when too big for 512, a TC form."""

    full: bytes
    truncated: bytes


CacheKey = tuple[bytes, bytes, bool, bool]
TransferHandler = Callable[[dns.message.Message, str, bool], list[bytes] | None]


def formerr(packet: bytes) -> bytes | None:
    """Return a FORMERR header echoing the ID and opcode, or None to drop."""
    if len(packet) < 12 or packet[2] & 0x80:
        return None
    return packet[:2] + bytes((0x80 | (packet[2] & 0x78), dns.rcode.FORMERR)) + bytes(8)


class Responder:
    """Answers queries for the zones of a ``ZoneTable``, with a bounded cache."""

    def __init__(self, zones: ZoneTable, max_cached: int) -> None:
        self.zones = zones
        self.max_cached = max_cached
        self.cache: dict[CacheKey, Answer] = {}
        # UDP replies by the query's bytes after its ID. A resolver that
        # repeats a question in the same case and with the same EDNS options
        # gets its reply with one lookup. Cleared with ``cache``, never
        # replaced, so listeners may hold a reference to it.
        self.exact: dict[bytes, bytes] = {}
        self.transfer: TransferHandler | None = None
        # Queries received, counted by the listeners (per batch over UDP).
        self.queries = 0

    def clear(self) -> None:
        self.cache.clear()
        self.exact.clear()

    def respond(self, packet: bytes, peer: str, tcp: bool) -> list[bytes]:
        """Return the response messages for one query packet (none: drop it)."""
        try:
            fast = self._respond_fast(packet, tcp)
            if fast is not None:
                return [fast]
            return self._respond_slow(packet, peer, tcp)
        except Exception:
            logger.exception("failed to answer a query from %s", peer)
            reply = formerr(packet)
            if reply is None:
                return []
            return [reply[:3] + bytes((dns.rcode.SERVFAIL,)) + reply[4:]]

    def _respond_fast(self, packet: bytes, tcp: bool) -> bytes | None:
        """Answer a plain query from the cache; None sends it to the slow path."""
        size = len(packet)
        if size < 17 or packet[2] & 0xF8:  # QR set or opcode not QUERY
            return None
        counts = packet[4:12]
        if counts == HEADER_ONE_QUESTION:
            edns = False
        elif counts == HEADER_ONE_QUESTION_OPT:
            edns = True
        else:
            return None

        end = 12
        while True:
            length = packet[end] if end < size else 0xFF
            if length == 0:
                break
            if length > 63:  # a compression pointer or garbage
                return None
            end += length + 1
        end += 1
        if end - 12 > MAX_QNAME_WIRE or end + 4 > size:
            return None
        qtail = packet[end : end + 4]
        if qtail[:2] in TRANSFER_QTYPES:
            return None

        do = False
        limit = CLASSIC_UDP_SIZE
        if edns:
            opt = packet[end + 4 :]
            if len(opt) < 11 or opt[0] != 0 or opt[1:3] != OPT_TYPE or opt[6] != 0:
                return None  # not an OPT record, or EDNS version not 0
            if 11 + int.from_bytes(opt[9:11]) != len(opt):
                return None
            do = bool(opt[7] & DO_BIT)
            limit = min(max(int.from_bytes(opt[3:5]), CLASSIC_UDP_SIZE), EDNS_UDP_SIZE)
        elif end + 4 != size:
            return None

        qname = packet[12:end]
        key = (qname.lower(), qtail, edns, do)
        answer = self.cache.get(key)
        if answer is None:
            answer = self._build(key)
        wire = answer.full if tcp or len(answer.full) <= limit else answer.truncated
        flags = bytes(
            (
                (wire[2] & 0xFE) | (packet[2] & 0x01),
                (wire[3] & 0xEF) | (packet[3] & 0x10),
            )
        )
        reply = packet[:2] + flags + wire[4:12] + qname + wire[end:]
        if not tcp:
            exact = self.exact
            if len(exact) >= self.max_cached:
                del exact[next(iter(exact))]
            exact[packet[2:]] = reply[2:]
        return reply

    def _respond_slow(self, packet: bytes, peer: str, tcp: bool) -> list[bytes]:
        try:
            query = dns.message.from_wire(packet)
        except (dns.exception.DNSException, ValueError, IndexError):
            reply = formerr(packet)
            return [reply] if reply is not None else []
        if query.flags & dns.flags.QR:
            return []  # never answer a response
        if query.edns > 0:
            return self._badvers(packet)
        opcode = query.opcode()
        if opcode != dns.opcode.QUERY:
            response = dns.message.make_response(query)
            response.set_rcode(dns.rcode.NOTIMP)
            return [response.to_wire()]
        if len(query.question) != 1:
            reply = formerr(packet)
            return [reply] if reply is not None else []

        question = query.question[0]
        if question.rdtype in (dns.rdatatype.AXFR, dns.rdatatype.IXFR):
            if self.transfer is not None:
                return self.transfer(query, peer, tcp) or []
            return [self._refused(query)]

        qname = question.name.canonicalize()
        qtail = question.rdtype.to_bytes(2) + question.rdclass.to_bytes(2)
        edns = query.edns >= 0
        do = bool(query.ednsflags & dns.flags.DO)
        key = (qname.to_wire(), qtail, edns, do)
        answer = self.cache.get(key) or self._build(key)
        limit = CLASSIC_UDP_SIZE
        if edns:
            limit = min(max(query.payload, CLASSIC_UDP_SIZE), EDNS_UDP_SIZE)
        wire = answer.full if tcp or len(answer.full) <= limit else answer.truncated
        flags = (
            (wire[2] & 0xFE) | (packet[2] & 0x01),
            (wire[3] & 0xEF) | (packet[3] & 0x10),
        )
        return [packet[:2] + bytes(flags) + wire[4:]]

    def _badvers(self, packet: bytes) -> list[bytes]:
        # RFC 6891 section 6.1.3: an unknown EDNS version gets BADVERS with
        # the version we support.
        try:
            query = dns.message.from_wire(
                packet, ignore_trailing=True, question_only=True
            )
        except (dns.exception.DNSException, ValueError):
            reply = formerr(packet)
            return [reply] if reply is not None else []
        response = dns.message.make_response(query)
        response.use_edns(0, payload=EDNS_UDP_SIZE)
        response.set_rcode(dns.rcode.BADVERS)
        return [response.to_wire()]

    def _refused(self, query: dns.message.Message) -> bytes:
        response = dns.message.make_response(query)
        response.flags &= ~dns.flags.RA
        response.set_rcode(dns.rcode.REFUSED)
        return response.to_wire()

    def _build(self, key: CacheKey) -> Answer:
        """Build, cache and return the answer for a question."""
        qname_wire, qtail, edns, do = key
        qname = dns.name.from_wire(qname_wire, 0)[0]
        qtype = int.from_bytes(qtail[:2])
        qclass = int.from_bytes(qtail[2:])

        response = dns.message.Message(id=0)
        response.flags = dns.flags.QR
        response.question = [dns.rrset.RRset(qname, qclass, qtype)]
        if edns:
            response.use_edns(
                0, ednsflags=dns.flags.DO if do else 0, payload=EDNS_UDP_SIZE
            )
        zone = self.zones.find(qname) if qclass == dns.rdataclass.IN else None
        if zone is None:
            # Not authoritative, and no recursion is offered (RFC 1035 4.3.1).
            response.set_rcode(dns.rcode.REFUSED)
        else:
            result: Resolution = zone.resolve(qname, qtype)
            if result.authoritative:
                response.flags |= dns.flags.AA
            response.set_rcode(result.rcode)
            response.answer = result.answer
            response.authority = result.authority
            response.additional = result.additional
        full = response.to_wire(max_size=65535)

        # RFC 2181 section 9: a truncated answer sets TC; the client retries
        # over TCP. Only the header, question and OPT record are sent.
        response.answer, response.authority, response.additional = [], [], []
        response.flags |= dns.flags.TC
        truncated = response.to_wire()

        answer = Answer(full, truncated)
        if len(self.cache) >= self.max_cached:
            # Evict the oldest entry, so random names cannot grow the cache.
            del self.cache[next(iter(self.cache))]
        self.cache[key] = answer
        return answer
