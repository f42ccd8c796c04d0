"""BIND zone files (RFC 1035 section 5): import into records, export from them.

dnspython's zone-file reader does the syntax ($ORIGIN, $TTL, parentheses,
comments, relative names, owner inheritance, TTL units, quoted and escaped
strings). It is given a small transaction that keeps every record with the
line it started on, instead of a dnspython zone, so that per-record TTLs
survive and every error can name its line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import dns.exception
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.tokenizer
import dns.zonefile

from onestack.dns import records
from onestack.dns.records import Record, RecordError


class ZoneFileError(ValueError):
    """A zone file that cannot be imported; ``line`` is 1-based (0: whole file)."""

    def __init__(self, line: int, message: str) -> None:
        where = f"line {line}: " if line else ""
        super().__init__(where + message)
        self.line = line
        self.message = message


@dataclass(frozen=True)
class Soa:
    """The SOA fields of a zone (RFC 1035 section 3.3.13)."""

    primary_ns: str
    email: str
    serial: int
    refresh: int
    retry: int
    expire: int
    minimum: int
    ttl: int


@dataclass(frozen=True)
class ParsedZone:
    soa: Soa | None
    default_ttl: int | None
    records: list[Record]


class _LineTokenizer(dns.tokenizer.Tokenizer):
    """A tokenizer that remembers the line where the current entry started."""

    entry_line = 1

    def get(self, want_leading: bool = False, want_comment: bool = False) -> Any:
        line = self.line_number
        token = super().get(want_leading, want_comment)
        if want_leading and want_comment:
            # The reader's top-of-loop read: the start of an entry.
            self.entry_line = line
        return token


class _Collector:
    """The part of a dnspython transaction that the zone-file reader uses."""

    def __init__(self, origin: dns.name.Name, tokenizer: _LineTokenizer) -> None:
        self.origin = origin
        self.manager = self
        self.tokenizer = tokenizer
        self.items: list[tuple[int, dns.name.Name, int, dns.rdata.Rdata]] = []

    def origin_information(self) -> tuple[dns.name.Name, bool, dns.name.Name]:
        return self.origin, False, self.origin

    def check_put_rdataset(self, _check: Any) -> None:
        """Accept the reader's CNAME check; ``parse`` applies its own rules."""

    def _set_origin(self, _origin: dns.name.Name) -> None:
        """Ignore: names reach ``add`` already absolute."""

    def add_unicode(self, _value: str) -> None:
        """Ignore $UNICODE: names are kept as the file spells them."""

    def add(self, name: dns.name.Name, ttl: int, rdata: dns.rdata.Rdata) -> None:
        self.items.append((self.tokenizer.entry_line, name, ttl, rdata))


def _soa_from_rdata(rdata: Any, ttl: int) -> Soa:
    return Soa(
        primary_ns=rdata.mname.to_text(omit_final_dot=True).lower(),
        email=rdata.rname.to_text(omit_final_dot=True),
        serial=int(rdata.serial),
        refresh=int(rdata.refresh),
        retry=int(rdata.retry),
        expire=int(rdata.expire),
        minimum=int(rdata.minimum),
        ttl=ttl,
    )


def parse(zone: str, text: str) -> ParsedZone:
    """Read a zone file for ``zone``; raise ZoneFileError naming the line."""
    origin = records.zone_origin(zone)
    tokenizer = _LineTokenizer(text, "zone")
    collector = _Collector(origin, tokenizer)
    # $INCLUDE is left out of the allowed directives: an API call must never
    # read files on the server.
    reader = dns.zonefile.Reader(
        tokenizer,
        dns.rdataclass.IN,
        collector,  # type: ignore[arg-type]
        allow_directives={"$ORIGIN", "$TTL", "$GENERATE"},
    )
    # The reader silently skips records outside its zone origin; starting it
    # at the root with the zone as current origin lets ``parse`` reject them.
    reader.zone_origin = dns.name.root
    try:
        reader.read()
    except dns.zonefile.UnknownOrigin:
        raise ZoneFileError(
            tokenizer.entry_line, "$ORIGIN must be an absolute name"
        ) from None
    except dns.exception.DNSException as exc:
        message = re.sub(r"^zone:\d+: ", "", str(exc))
        raise ZoneFileError(tokenizer.entry_line, message or "syntax error") from None

    soa: Soa | None = None
    parsed: list[Record] = []
    seen: set[tuple[str, str, dns.rdata.Rdata]] = set()
    for line, name, ttl, rdata in collector.items:
        rdtype = dns.rdatatype.to_text(rdata.rdtype)
        if not name.is_subdomain(origin):
            raise ZoneFileError(line, f"{name} is outside the zone {zone}")
        relative = records.relative_text(origin, name)
        if rdtype == "SOA":
            if relative != records.APEX:
                raise ZoneFileError(
                    line, f"an SOA record belongs at the apex, not at {name}"
                )
            if soa is not None:
                raise ZoneFileError(line, "a zone has exactly one SOA record")
            soa = _soa_from_rdata(rdata, ttl)
            continue
        if rdtype not in records.SUPPORTED_TYPES:
            raise ZoneFileError(
                line,
                f"record type {rdtype} is not supported; supported types: "
                + ", ".join(records.SUPPORTED_TYPES),
            )
        if (relative, rdtype, rdata) in seen:
            continue  # RFC 2181 section 5: an rrset holds no duplicate records
        seen.add((relative, rdtype, rdata))
        data, priority = records.presentation(rdata)
        try:
            record = records.validate_record(
                zone, relative, rdtype, data, ttl, priority
            )
            records.check_rrset_rules(zone, parsed, record)
        except RecordError as exc:
            raise ZoneFileError(line, f"{name} {rdtype}: {exc.message}") from None
        parsed.append(record)

    default_ttl = reader.default_ttl if reader.default_ttl_known else None
    return ParsedZone(soa=soa, default_ttl=default_ttl, records=parsed)


def export(zone: str, soa: Soa, default_ttl: int, zone_records: list[Record]) -> str:
    """Return a BIND zone file with absolute names in all data."""
    lines = [
        f"; zone {zone}, serial {soa.serial}, exported by OneStack",
        f"$ORIGIN {zone}.",
        f"$TTL {default_ttl}",
        f"@\t{soa.ttl}\tIN\tSOA\t{soa.primary_ns}. {soa.email}. ("
        f" {soa.serial} {soa.refresh} {soa.retry} {soa.expire} {soa.minimum} )",
    ]
    order = {rdtype: index for index, rdtype in enumerate(records.SUPPORTED_TYPES)}
    ordered = sorted(
        zone_records,
        key=lambda r: (r.name != records.APEX, r.name, order.get(r.type, 99)),
    )
    for record in ordered:
        rdata = records.record_rdata(zone, record)
        ttl = default_ttl if record.ttl is None else record.ttl
        text = rdata.to_text(origin=dns.name.root, relativize=False)
        lines.append(f"{record.name}\t{ttl}\tIN\t{record.type}\t{text}")
    return "\n".join(lines) + "\n"
