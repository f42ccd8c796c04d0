"""Zones compiled for answering: rrsets by owner name, cuts, wildcards.

A ``CompiledZone`` is built once per zone change from its stored records.
``resolve`` follows RFC 1034 section 4.3.2 with the wildcard rules of
RFC 4592; the server turns its result into wire bytes once per question and
caches them (see ``responder``).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from onestack.dns import records
from onestack.dns.records import Record
from onestack.dns.zonefile import Soa

IN = dns.rdataclass.IN
SOA = dns.rdatatype.SOA
NS = dns.rdatatype.NS
CNAME = dns.rdatatype.CNAME
ANY = dns.rdatatype.ANY
A = dns.rdatatype.A
AAAA = dns.rdatatype.AAAA
WILDCARD = b"*"
# Longest CNAME chain followed inside one zone; longer ones are answered as
# far as they go, which also ends loops.
MAX_CHAIN = 8

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class ZoneData:
    """A zone as stored: its settings and records."""

    name: str
    ttl: int
    soa: Soa
    records: list[Record]
    allow_transfer: list[str] = field(default_factory=list)
    also_notify: list[str] = field(default_factory=list)


@dataclass
class Resolution:
    """The sections of one answer, before it becomes wire bytes."""

    rcode: int = 0
    authoritative: bool = True
    answer: list[dns.rrset.RRset] = field(default_factory=list)
    authority: list[dns.rrset.RRset] = field(default_factory=list)
    additional: list[dns.rrset.RRset] = field(default_factory=list)


def _synthesize(rrset: dns.rrset.RRset, owner: dns.name.Name) -> dns.rrset.RRset:
    """Return a copy of a wildcard rrset owned by ``owner`` (RFC 4592 section 3.4)."""
    copy = dns.rrset.RRset(owner, rrset.rdclass, rrset.rdtype)
    copy.update(rrset)
    return copy


class CompiledZone:
    """One zone's records arranged for lookups."""

    def __init__(self, zone: ZoneData) -> None:
        self.name = zone.name
        self.origin = records.zone_origin(zone.name)
        self.serial = zone.soa.serial
        self.also_notify = list(zone.also_notify)
        self.allow_transfer: list[Network] = [
            ipaddress.ip_network(entry, strict=False) for entry in zone.allow_transfer
        ]

        self.soa = dns.rrset.from_text(
            self.origin,
            zone.soa.ttl,
            IN,
            SOA,
            f"{zone.soa.primary_ns}. {zone.soa.email}. {zone.soa.serial} "
            f"{zone.soa.refresh} {zone.soa.retry} {zone.soa.expire} {zone.soa.minimum}",
        )
        # RFC 2308 section 5: the negative answer's TTL is the smaller of the
        # SOA's own TTL and its minimum field.
        self.negative_soa = dns.rrset.RRset(self.origin, IN, SOA)
        self.negative_soa.update(self.soa)
        self.negative_soa.ttl = min(zone.soa.minimum, zone.soa.ttl)

        self.nodes: dict[dns.name.Name, dict[int, dns.rrset.RRset]] = {
            self.origin: {SOA: self.soa}
        }
        for record in zone.records:
            self._add(zone, record)
        # Every name that exists, empty non-terminals included (RFC 4592
        # section 2.2.2), so that they answer NODATA rather than NXDOMAIN.
        self.names: set[dns.name.Name] = set()
        for name in self.nodes:
            while name not in self.names and name.is_subdomain(self.origin):
                self.names.add(name)
                if name == self.origin:
                    break
                name = name.parent()
        self.cuts = {
            name
            for name, node in self.nodes.items()
            if NS in node and name != self.origin
        }

    def _add(self, zone: ZoneData, record: Record) -> None:
        owner = records.owner_name(zone.name, record.name)
        rdata = records.record_rdata(zone.name, record)
        ttl = zone.ttl if record.ttl is None else record.ttl
        node = self.nodes.setdefault(owner, {})
        rrset = node.get(rdata.rdtype)
        if rrset is None:
            rrset = node[rdata.rdtype] = dns.rrset.RRset(owner, IN, rdata.rdtype)
            rrset.ttl = ttl
        # RFC 2181 section 5.2: one TTL per rrset; the smallest one wins.
        rrset.ttl = min(rrset.ttl, ttl)
        rrset.add(rdata)

    def rrsets(self) -> Iterable[dns.rrset.RRset]:
        """Yield every rrset except the SOA, apex first (for zone transfers)."""
        for name in sorted(self.nodes):
            for rdtype, rrset in sorted(self.nodes[name].items()):
                if rdtype != SOA:
                    yield rrset

    def allows_transfer(self, address: str) -> bool:
        try:
            peer = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(peer, ipaddress.IPv6Address) and peer.ipv4_mapped is not None:
            peer = peer.ipv4_mapped
        return any(peer in network for network in self.allow_transfer)

    def _cut_above(self, name: dns.name.Name) -> dns.name.Name | None:
        """Return the highest delegation point at or above ``name``, if any."""
        found = None
        while name != self.origin:
            if name in self.cuts:
                found = name
            name = name.parent()
        return found

    def _closest_wildcard(
        self, name: dns.name.Name
    ) -> dict[int, dns.rrset.RRset] | None:
        """Return the node of the source of synthesis for ``name`` (RFC 4592 4.1)."""
        encloser = name.parent()
        while encloser not in self.names:
            encloser = encloser.parent()
        return self.nodes.get(dns.name.Name((WILDCARD, *encloser.labels)))

    def _glue(self, targets: Iterable[dns.name.Name]) -> list[dns.rrset.RRset]:
        found = []
        for target in targets:
            node = self.nodes.get(target)
            if node is None:
                continue
            for rdtype in (A, AAAA):
                if rdtype in node:
                    found.append(node[rdtype])
        return found

    def _referral(self, cut: dns.name.Name, result: Resolution) -> Resolution:
        # RFC 1034 section 4.3.2 step 3b: a referral is not authoritative and
        # carries the child's NS rrset with the addresses we hold for them.
        ns = self.nodes[cut][NS]
        # A CNAME followed into the delegation is still our own answer.
        result.authoritative = bool(result.answer)
        result.authority.append(ns)
        result.additional.extend(self._glue(rdata.target for rdata in ns))
        return result

    def _additional(self, rrset: dns.rrset.RRset) -> list[dns.rrset.RRset]:
        """Return addresses of in-zone MX, NS and SRV targets (RFC 1035 3.3)."""
        if rrset.rdtype not in (dns.rdatatype.MX, NS, dns.rdatatype.SRV):
            return []
        targets = [
            rdata.exchange if rrset.rdtype == dns.rdatatype.MX else rdata.target
            for rdata in rrset
        ]
        return self._glue(t for t in targets if t.is_subdomain(self.origin))

    def resolve(self, qname: dns.name.Name, qtype: int) -> Resolution:
        """Answer ``qname``/``qtype`` (``qname`` is inside this zone)."""
        result = Resolution()
        name = qname
        for _ in range(MAX_CHAIN):
            cut = self._cut_above(name)
            if cut is not None and not (qtype == dns.rdatatype.DS and cut == name):
                return self._referral(cut, result)

            node = self.nodes.get(name)
            if node is None:
                if name in self.names:
                    result.authority.append(self.negative_soa)  # empty non-terminal
                    return result
                wildcard = self._closest_wildcard(name)
                if wildcard is None:
                    # RFC 6604: the rcode describes the last name in the chain.
                    result.rcode = 3
                    result.authority.append(self.negative_soa)
                    return result
                node = {
                    rdtype: _synthesize(rrset, name)
                    for rdtype, rrset in wildcard.items()
                }

            if qtype == ANY:
                # RFC 8482 section 4.2: answer ANY with one rrset of the name.
                first = min(node)
                result.answer.append(node[first])
                return result
            rrset = node.get(qtype)
            if rrset is not None:
                result.answer.append(rrset)
                result.additional.extend(self._additional(rrset))
                return result
            cname = node.get(CNAME)
            if cname is None:
                result.authority.append(self.negative_soa)
                return result
            result.answer.append(cname)
            target = cname[0].target
            if not target.is_subdomain(self.origin):
                return result
            name = target
        return result


class ZoneTable:
    """The hosted zones by origin, with the longest-suffix zone lookup."""

    def __init__(self) -> None:
        self.zones: dict[dns.name.Name, CompiledZone] = {}
        self.by_name: dict[str, CompiledZone] = {}

    def put(self, zone: CompiledZone) -> None:
        self.zones[zone.origin] = zone
        self.by_name[zone.name] = zone

    def remove(self, name: str) -> CompiledZone | None:
        zone = self.by_name.pop(name, None)
        if zone is not None:
            self.zones.pop(zone.origin, None)
        return zone

    def get(self, name: str) -> CompiledZone | None:
        return self.by_name.get(name)

    def find(self, qname: dns.name.Name) -> CompiledZone | None:
        """Return the zone with the longest origin that contains ``qname``."""
        name = qname
        while True:
            zone = self.zones.get(name)
            if zone is not None:
                return zone
            if len(name) <= 1:
                return None
            name = name.parent()
