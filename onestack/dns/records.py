"""Record rules: zone and owner names, data validated per type, rrset rules.

A record as the API and the store hold it has a name relative to its zone
(``@`` is the apex), a type, ``data`` in zone-file presentation form without
the priority, an optional TTL (None means the zone's) and, for MX and SRV, a
priority. Names inside ``data`` are stored absolute: the API reads
``mail.example.com`` as ``mail.example.com.`` (what API users mean) and a
single label such as ``www`` as a name in the zone; zone files keep their own
relative-name rules (see ``zonefile``).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

import dns.exception
import dns.ipv4
import dns.ipv6
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.TXT

# The types the API documents, then types accepted so that real zone files
# import (served as stored; no special processing).
API_TYPES = ("A", "AAAA", "CNAME", "MX", "TXT", "NS", "SRV", "PTR", "CAA")
EXTRA_TYPES = ("SSHFP", "TLSA", "DS", "NAPTR", "HTTPS", "SVCB", "HINFO", "LOC")
SUPPORTED_TYPES = API_TYPES + EXTRA_TYPES
PRIORITY_TYPES = frozenset({"MX", "SRV"})
# Types whose whole data is one domain name.
NAME_TYPES = frozenset({"CNAME", "NS", "PTR", "MX"})

# RFC 2181 section 8: a TTL is an unsigned 31-bit number.
MAX_TTL = 2**31 - 1
# RFC 1035 section 3.3.14: a TXT character-string is at most 255 octets.
MAX_TXT_STRING = 255
# A plain TXT text is split on the wire; this bounds one record's text.
MAX_TXT_BYTES = 16 * 1024

APEX = "@"


class RecordError(ValueError):
    """Invalid record or zone input; ``field`` names the value at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class DuplicateRecord(RecordError):
    """The zone already contains exactly this record."""


@dataclass(frozen=True)
class Record:
    """One resource record as the API and the store hold it."""

    name: str
    type: str
    data: str
    ttl: int | None = None
    priority: int | None = None
    id: int | None = None

    def same_content(self, other: Record) -> bool:
        return (
            self.name == other.name
            and self.type == other.type
            and self.data == other.data
            and self.priority == other.priority
        )


def zone_origin(zone: str) -> dns.name.Name:
    return dns.name.from_text(zone)


def _reject_unprintable(text: str, what: str) -> None:
    # Labels may hold any byte on the wire, but a control character or space
    # in a name is a typo or an attack, and zone-file tools reject it.
    if any(ord(char) < 0x21 or ord(char) == 0x7F for char in text.strip()):
        raise RecordError(
            "name",
            f"invalid {what} {text!r}: control characters and spaces are not allowed",
        )


def normalize_zone_name(text: str) -> str:
    """Return a zone name lowercased without the trailing dot, or raise."""
    _reject_unprintable(text, "zone name")
    value = text.strip().lower().rstrip(".")
    if not value:
        raise RecordError("name", "a zone name must not be empty")
    try:
        name = dns.name.from_text(value)
    except dns.exception.DNSException as exc:
        raise RecordError("name", f"invalid zone name {text!r}: {exc}") from None
    for label in name.labels[:-1]:
        if label == b"*":
            raise RecordError("name", f"a zone name cannot hold a wildcard: {text!r}")
    return name.to_text(omit_final_dot=True)


def relative_name(zone: str, text: str) -> str:
    """Return ``text`` as a lowercase name relative to ``zone`` (``@`` the apex).

    ``www``, ``www.example.com.`` and ``www.example.com`` all give ``www`` in
    the zone ``example.com``; a name outside the zone raises.
    """
    _reject_unprintable(text, "record name")
    value = text.strip().lower()
    origin = zone_origin(zone)
    if value in ("", APEX, zone + "."):
        return APEX
    try:
        if value.endswith("."):
            name = dns.name.from_text(value)
        elif value == zone or value.endswith("." + zone):
            name = dns.name.from_text(value + ".")
        else:
            name = dns.name.from_text(value, origin)
    except dns.exception.DNSException as exc:
        raise RecordError("name", f"invalid record name {text!r}: {exc}") from None
    if not name.is_subdomain(origin):
        raise RecordError("name", f"{text!r} is outside the zone {zone}")
    return relative_text(origin, name)


def relative_text(origin: dns.name.Name, name: dns.name.Name) -> str:
    if name == origin:
        return APEX
    return name.relativize(origin).to_text().lower()


def owner_name(zone: str, name: str) -> dns.name.Name:
    """Return the absolute owner name of a record name relative to ``zone``."""
    origin = zone_origin(zone)
    if name == APEX:
        return origin
    return dns.name.from_text(name, origin)


def _target(zone: str, text: str) -> str:
    """Return a domain name in data as an absolute name (``@`` is the apex)."""
    if text == APEX:
        return zone + "."
    if "." not in text:
        text = f"{text}.{zone}"  # a single label is a name in the zone
    try:
        name = dns.name.from_text(text if text.endswith(".") else text + ".")
    except dns.exception.DNSException as exc:
        raise RecordError("data", f"invalid domain name {text!r}: {exc}") from None
    return name.to_text().lower()


def _check_priority(rdtype: str, priority: int | None) -> None:
    if rdtype in PRIORITY_TYPES:
        if priority is None:
            raise RecordError("priority", f"an {rdtype} record needs a priority")
        if not 0 <= priority <= 65535:
            raise RecordError("priority", "must be between 0 and 65535")
    elif priority is not None:
        raise RecordError("priority", "applies only to MX and SRV records")


def _check_address(rdtype: str, data: str) -> None:
    text = data.strip()
    if rdtype == "A":
        try:
            dns.ipv4.inet_aton(text)
        except dns.exception.DNSException:
            hint = "; use an AAAA record" if ":" in text else ""
            raise RecordError(
                "data", f"{data!r} is not an IPv4 address{hint}"
            ) from None
    else:
        try:
            dns.ipv6.inet_aton(text)
        except dns.exception.DNSException:
            hint = "; use an A record" if text.count(".") == 3 else ""
            raise RecordError(
                "data", f"{data!r} is not an IPv6 address{hint}"
            ) from None
        if text.count(".") == 3 and ":" not in text:
            raise RecordError("data", f"{data!r} is an IPv4 address; use an A record")


def _plain_txt(data: str) -> dns.rdata.Rdata:
    raw = data.encode("utf-8")
    if len(raw) > MAX_TXT_BYTES:
        raise RecordError("data", f"a TXT text is limited to {MAX_TXT_BYTES} bytes")
    chunks = [raw[i : i + MAX_TXT_STRING] for i in range(0, len(raw), MAX_TXT_STRING)]
    return dns.rdtypes.ANY.TXT.TXT(
        dns.rdataclass.IN, dns.rdatatype.TXT, chunks or [b""]
    )


def make_rdata(
    zone: str, rdtype: str, data: str, priority: int | None
) -> dns.rdata.Rdata:
    """Validate ``data`` for ``rdtype`` and return its rdata, or raise RecordError."""
    if rdtype not in SUPPORTED_TYPES:
        raise RecordError(
            "type",
            f"unsupported record type {rdtype!r}; use one of {', '.join(API_TYPES)}",
        )
    _check_priority(rdtype, priority)
    text = data.strip()
    if not text:
        raise RecordError("data", "must not be empty")

    if rdtype in ("A", "AAAA"):
        _check_address(rdtype, text)
    elif rdtype == "TXT" and not text.startswith('"'):
        return _plain_txt(data)
    elif rdtype in NAME_TYPES:
        if len(text.split()) != 1:
            raise RecordError(
                "data", f"an {rdtype} record contains exactly one domain name"
            )
        text = _target(zone, text)
    elif rdtype == "SRV":
        parts = text.split()
        if len(parts) != 3:
            raise RecordError("data", "an SRV record's data is 'weight port target'")
        text = " ".join(parts[:2] + [_target(zone, parts[2])])
    if priority is not None:
        text = f"{priority} {text}"

    try:
        return dns.rdata.from_text(
            dns.rdataclass.IN, rdtype, text, origin=dns.name.root, relativize=False
        )
    except (dns.exception.DNSException, ValueError) as exc:
        reason = str(exc) or type(exc).__name__
        raise RecordError("data", f"invalid {rdtype} data {data!r}: {reason}") from None


def presentation(rdata: dns.rdata.Rdata) -> tuple[str, int | None]:
    """Return the API's ``data`` and ``priority`` for an rdata."""
    rdtype = dns.rdatatype.to_text(rdata.rdtype)
    if rdtype == "TXT":
        strings = rdata.strings  # type: ignore[attr-defined]
        if len(strings) == 1:
            try:
                text = strings[0].decode("utf-8")
            except UnicodeDecodeError:
                text = ""
            if text and text.isprintable() and not text.startswith('"'):
                return text, None
        return rdata.to_text(), None
    full = rdata.to_text(origin=dns.name.root, relativize=False)
    if rdtype in NAME_TYPES or rdtype == "SRV":
        full = full.lower()
    if rdtype in PRIORITY_TYPES:
        first, rest = full.split(None, 1)
        return rest, int(first)
    return full, None


def validate_record(
    zone: str,
    name: str,
    rdtype: str,
    data: str,
    ttl: int | None,
    priority: int | None,
) -> Record:
    """Return the record in normal form, or raise RecordError naming the field."""
    rdtype = rdtype.strip().upper()
    relative = relative_name(zone, name)
    if ttl is not None and not 0 <= ttl <= MAX_TTL:
        raise RecordError("ttl", f"must be between 0 and {MAX_TTL}")
    rdata = make_rdata(zone, rdtype, data, priority)
    if rdtype == "TXT" and not data.strip().startswith('"'):
        normal_data, normal_priority = data, None
    else:
        normal_data, normal_priority = presentation(rdata)
    return Record(relative, rdtype, normal_data, ttl, normal_priority)


def record_rdata(zone: str, record: Record) -> dns.rdata.Rdata:
    """Return the rdata of a stored (already validated) record."""
    return make_rdata(zone, record.type, record.data, record.priority)


def check_rrset_rules(zone: str, existing: Iterable[Record], new: Record) -> None:
    """Raise when ``new`` cannot join ``existing`` (another id is replaced).

    RFC 1034 section 3.6.2 and RFC 2181 section 10.1: a CNAME is alone at
    its name, so it cannot be at the apex (which contains SOA and NS) either.
    """
    others = [r for r in existing if new.id is None or r.id != new.id]
    if new.type == "CNAME" and new.name == APEX:
        raise RecordError(
            "name",
            "a CNAME cannot be at the zone apex, which contains the SOA and NS records",
        )
    new_rdata = record_rdata(zone, new)
    for record in others:
        if record.name != new.name:
            continue
        if record.type == new.type and record_rdata(zone, record) == new_rdata:
            raise DuplicateRecord(
                "data", f"the zone already contains this {new.type} record"
            )
        if new.type == "CNAME" and record.type != "CNAME":
            raise RecordError(
                "type",
                f"{new.name} already has {record.type} data, and a CNAME must be alone at its name",
            )
        if new.type == "CNAME" and record.type == "CNAME":
            raise RecordError(
                "type", f"{new.name} already has a CNAME, and only one is allowed"
            )
        if record.type == "CNAME":
            raise RecordError(
                "type", f"{new.name} has a CNAME, so no other data may be at that name"
            )


def normalize_hostname(field: str, text: str) -> str:
    """Return a host name lowercased without the trailing dot, or raise."""
    value = text.strip().lower().rstrip(".")
    try:
        name = dns.name.from_text(value)
    except dns.exception.DNSException as exc:
        raise RecordError(field, f"invalid host name {text!r}: {exc}") from None
    if not value:
        raise RecordError(field, "must not be empty")
    return name.to_text(omit_final_dot=True)


def normalize_email(text: str) -> str:
    """Return an SOA RNAME (RFC 1035 section 8) from ``admin.example.com`` or
    ``admin@example.com``; a dot inside the local part is escaped."""
    value = text.strip().rstrip(".")
    if "@" in value:
        local, _, domain = value.rpartition("@")
        value = local.replace(".", "\\.") + "." + domain
    return (
        normalize_hostname("email", value)
        if "\\" not in value
        else _escaped_rname(value)
    )


def _escaped_rname(value: str) -> str:
    try:
        name = dns.name.from_text(value)
    except dns.exception.DNSException as exc:
        raise RecordError("email", f"invalid mailbox {value!r}: {exc}") from None
    return name.to_text(omit_final_dot=True)


def normalize_network(text: str) -> str:
    """Return an address or network for allowTransfer in its normal form."""
    try:
        network = ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        raise RecordError(
            "allowTransfer", f"{text!r} is not an IP address or network"
        ) from None
    if network.num_addresses == 1:
        return str(network.network_address)
    return str(network)


def parse_target(text: str) -> tuple[str, int]:
    """Split an alsoNotify entry ``host:port`` (``[v6]:port``; port 53 when absent)."""
    value = text.strip()
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        port = rest.removeprefix(":") or "53"
    elif value.count(":") == 1:
        host, port = value.split(":")
    else:
        host, port = value, "53"
    try:
        address = ipaddress.ip_address(host)
        number = int(port)
    except ValueError:
        raise RecordError(
            "alsoNotify", f"{text!r} is not an IP address with an optional :port"
        ) from None
    if not 1 <= number <= 65535:
        raise RecordError("alsoNotify", f"port {number} is out of range in {text!r}")
    return str(address), number


def normalize_target(text: str) -> str:
    host, port = parse_target(text)
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
