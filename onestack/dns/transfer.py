"""Zone transfers out (AXFR, IXFR answered in full) and NOTIFY to secondaries."""

from __future__ import annotations

import asyncio
import logging

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from onestack.dns.answers import CompiledZone, ZoneTable
from onestack.dns.records import parse_target

logger = logging.getLogger(__name__)

# Records per transfer message are packed up to about this many octets, well
# under the 65535 a TCP message allows (RFC 5936 section 2.2).
TRANSFER_MESSAGE_BYTES = 16_000
NOTIFY_TIMEOUT = 2.0
NOTIFY_ATTEMPTS = 3


def _response(
    query: dns.message.Message, rcode: int = dns.rcode.NOERROR
) -> dns.message.Message:
    response = dns.message.make_response(query)
    response.flags &= ~dns.flags.RA
    response.set_rcode(rcode)
    return response


class Transfers:
    """Answers AXFR and IXFR queries for the zones of a table."""

    def __init__(self, zones: ZoneTable) -> None:
        self.zones = zones

    def __call__(self, query: dns.message.Message, peer: str, tcp: bool) -> list[bytes]:
        question = query.question[0]
        zone = self.zones.zones.get(question.name)
        if zone is None or question.rdclass != dns.rdataclass.IN:
            # RFC 5936 section 2.2.1: not authoritative for this zone.
            return [_response(query, dns.rcode.NOTAUTH).to_wire()]
        if not zone.allows_transfer(peer):
            logger.warning("zone transfer of %s refused to %s", zone.name, peer)
            return [_response(query, dns.rcode.REFUSED).to_wire()]

        if not tcp:
            if question.rdtype == dns.rdatatype.AXFR:
                # RFC 5936 section 4.2: AXFR runs over TCP only.
                return [_response(query, dns.rcode.FORMERR).to_wire()]
            # RFC 1995 section 2: an IXFR over UDP that does not fit is
            # answered with the current SOA, and the client goes to TCP.
            response = _response(query)
            response.flags |= dns.flags.AA
            response.answer = [zone.soa]
            return [response.to_wire()]

        logger.info(
            "zone transfer of %s (serial %d) to %s", zone.name, zone.serial, peer
        )
        return self.messages(query, zone)

    def messages(self, query: dns.message.Message, zone: CompiledZone) -> list[bytes]:
        """Return the zone as transfer messages: SOA, every rrset, SOA again.

        An IXFR gets the same full transfer, which RFC 1995 section 4 allows.
        """
        rrsets: list[dns.rrset.RRset] = [zone.soa, *zone.rrsets(), zone.soa]
        wires: list[bytes] = []
        chunk: list[dns.rrset.RRset] = []
        size = 0
        for rrset in rrsets:
            rrset_size = sum(len(rdata.to_wire()) + 12 for rdata in rrset) + 255
            if chunk and size + rrset_size > TRANSFER_MESSAGE_BYTES:
                wires.append(self._message(query, chunk, first=not wires))
                chunk, size = [], 0
            chunk.append(rrset)
            size += rrset_size
        wires.append(self._message(query, chunk, first=not wires))
        return wires

    def _message(
        self, query: dns.message.Message, chunk: list[dns.rrset.RRset], first: bool
    ) -> bytes:
        response = _response(query)
        response.flags |= dns.flags.AA
        if not first:
            response.question = []  # RFC 5936 section 2.2: only the first needs it
        response.answer = chunk
        return response.to_wire(max_size=65535)


async def send_notify(zone: CompiledZone, target: str) -> bool:
    """Send NOTIFY for ``zone`` to one secondary (RFC 1996); True when it answered."""
    host, port = parse_target(target)
    message = dns.message.make_query(zone.origin, dns.rdatatype.SOA)
    # The opcode lives in the flags word, so it is set after the flags.
    message.flags = dns.flags.AA
    message.set_opcode(dns.opcode.NOTIFY)
    # RFC 1996 section 3.7: the answer section may carry the new SOA.
    message.answer = [zone.soa]
    for attempt in range(1, NOTIFY_ATTEMPTS + 1):
        try:
            response = await dns.asyncquery.udp(
                message, host, timeout=NOTIFY_TIMEOUT, port=port
            )
        except (dns.exception.Timeout, OSError, dns.exception.DNSException) as exc:
            logger.warning(
                "NOTIFY %s serial %d to %s failed (attempt %d): %s",
                zone.name,
                zone.serial,
                target,
                attempt,
                exc or type(exc).__name__,
            )
            continue
        logger.info(
            "NOTIFY %s serial %d to %s: %s",
            zone.name,
            zone.serial,
            target,
            dns.rcode.to_text(response.rcode()),
        )
        return response.rcode() == dns.rcode.NOERROR
    return False


async def notify_all(zone: CompiledZone, delay: float) -> None:
    """Wait ``delay`` seconds (so every worker has loaded the change), then notify."""
    await asyncio.sleep(delay)
    await asyncio.gather(*(send_notify(zone, target) for target in zone.also_notify))
