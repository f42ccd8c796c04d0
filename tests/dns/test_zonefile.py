"""BIND zone files: import, export, round trips, named-checkzone, errors."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from onestack.dns import records, zonefile
from onestack.dns.zonefile import ParsedZone, ZoneFileError
from tests.dns.zones import example_zone

BIND_STYLE = r"""
$TTL 86400      ; one day
$ORIGIN shop.example.
@       IN      SOA     ns1.shop.example.  admin\.team.shop.example. (
                        2023111501      ; serial
                        28800           ; refresh (8 hours)
                        7200            ; retry (2 hours)
                        604800          ; expire (1 week)
                        3600 )          ; minimum (1 hour)
        IN      NS      ns1
        IN      NS      ns2.provider.example.
        IN      MX      10 mx1
        IN      MX      20 mx2.provider.example.
@       300     IN      A       198.51.100.4
ns1             A       198.51.100.53
mx1     1H30M   IN      A       198.51.100.25
www             CNAME   shop.example.
txt             TXT     "semi;colon" "quote\"inside" "back\\slash"
                TXT     "second record at the same owner"
$ORIGIN eu.shop.example.
api             A       198.51.100.80
                AAAA    2001:db8:80::1
$ORIGIN shop.example.
_xmpp-server._tcp 1d SRV 5 0 5269 xmpp
xmpp            A       198.51.100.90
@               CAA     0 issuewild ";"
@               CAA     128 tbs "Unknown"
"""

ABSOLUTE_STYLE = """\
;; Exported by a hosted DNS provider: absolute names, one record per line.
corp.example.	3600	IN	SOA	ns-1.dns.example. hostmaster.corp.example. 42 7200 3600 1209600 300
corp.example.	3600	IN	NS	ns-1.dns.example.
corp.example.	3600	IN	NS	ns-2.dns.example.
corp.example.	300	IN	TXT	"google-site-verification=abc123"
corp.example.	300	IN	TXT	"v=spf1 include:_spf.mail.example ~all"
autodiscover.corp.example.	3600	IN	CNAME	autodiscover.outlook.example.
selector1._domainkey.corp.example.	3600	IN	CNAME	selector1-corp._domainkey.mail.example.
_sip._tls.corp.example.	3600	IN	SRV	100 1 443 sip.mail.example.
*.dev.corp.example.	60	IN	A	203.0.113.7
ssh.corp.example.	3600	IN	SSHFP	1 1 dd465c09cfa51fb45020cc83316fff21b9ec74ac
_443._tcp.www.corp.example.	3600	IN	TLSA	3 1 1 0c72ac70b745ac19998811b131d662c9ac69dbdbe7cb23e5b514b56664c5d3d6
4.113.0.203.in-addr.corp.example.	3600	IN	PTR	host.corp.example.
"""


def rrset_content(
    parsed: ParsedZone, zone: str
) -> set[tuple[str, str, int | None, object]]:
    """Records as (name, type, ttl, rdata), comparable across text forms."""
    return {
        (r.name, r.type, r.ttl, records.record_rdata(zone, r)) for r in parsed.records
    }


@pytest.mark.parametrize(
    ("zone", "text"),
    [
        ("example.com", example_zone()),
        ("shop.example", BIND_STYLE),
        ("corp.example", ABSOLUTE_STYLE),
    ],
)
def test_zone_round_trips_through_export(zone: str, text: str, tmp_path: Path) -> None:
    parsed = zonefile.parse(zone, text)
    assert parsed.soa is not None
    exported = zonefile.export(
        zone, parsed.soa, parsed.default_ttl or parsed.soa.ttl, parsed.records
    )
    again = zonefile.parse(zone, exported)
    assert again.soa == parsed.soa
    assert rrset_content(again, zone) == rrset_content(parsed, zone)
    assert len(again.records) == len(parsed.records)

    path = tmp_path / "zone.db"
    path.write_text(exported)
    check = subprocess.run(
        ["named-checkzone", "-i", "local", zone, str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert "OK" in check.stdout


def test_bind_style_details_read() -> None:
    parsed = zonefile.parse("shop.example", BIND_STYLE)
    assert parsed.soa is not None
    assert parsed.soa.email == "admin\\.team.shop.example"
    assert parsed.soa.minimum == 3600
    assert parsed.default_ttl == 86400
    by_key = {(r.name, r.type, r.data): r for r in parsed.records}
    assert by_key[("mx1", "A", "198.51.100.25")].ttl == 5400
    assert by_key[("@", "A", "198.51.100.4")].ttl == 300
    assert ("api.eu", "AAAA", "2001:db8:80::1") in by_key
    assert (
        by_key[("_xmpp-server._tcp", "SRV", "0 5269 xmpp.shop.example.")].priority == 5
    )
    assert ("txt", "TXT", "second record at the same owner") in by_key
    assert ("txt", "TXT", r'"semi;colon" "quote\"inside" "back\\slash"') in by_key


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        ("$TTL 1h\n@ NS ns1\nwww A 192.0.2.300\n", 3, "malformed"),
        ("$TTL 1h\n\n; comment\nwww IN FOO bar\n", 4, "unknown rdatatype"),
        ("$TTL 1h\n@ NS ns1\n$INCLUDE other.zone\n", 3, "$INCLUDE"),
        ("$TTL 1h\nwww CNAME other\nwww A 192.0.2.1\n", 3, "CNAME"),
        ("$TTL 1h\nwww.example.org. A 192.0.2.1\n", 2, "outside the zone"),
        ("$TTL 1h\nwww 1x A 192.0.2.1\n", 2, ""),
        (
            "$TTL 1h\n@ NS ns1\nsig RRSIG A 8 2 300 20240101000000 20230101000000 1 example.com. AAAA\n",
            3,
            "not supported",
        ),
        ("$TTL 1h\nwww A 192.0.2.1\nwww AAAA 192.0.2.1\n", 3, ""),
        ("$TTL 1h\n@ SOA ns1 admin ( 1 2 3 4\n", 2, ""),
        ("www A 192.0.2.1\n", 1, "TTL"),
        ("$TTL 1h\nsub SOA ns1 admin 1 2 3 4 5\n", 2, "apex"),
    ],
)
def test_malformed_file_names_line(text: str, line: int, reason: str) -> None:
    with pytest.raises(ZoneFileError) as caught:
        zonefile.parse("example.com", text)
    assert caught.value.line == line
    assert str(caught.value).startswith(f"line {line}: ")
    assert reason in str(caught.value)


def test_duplicate_records_merged() -> None:
    parsed = zonefile.parse(
        "example.com", "$TTL 60\nwww A 192.0.2.1\nwww A 192.0.2.1\n"
    )
    assert len(parsed.records) == 1


@pytest.mark.parametrize("name", ["x\x00y", "bad name", "tab\there", "del\x7f"])
def test_record_name_with_control_character_rejected(name: str) -> None:
    with pytest.raises(records.RecordError) as raised:
        records.relative_name("example.com", name)
    assert "control characters" in str(raised.value)


def test_zone_name_with_control_character_rejected() -> None:
    with pytest.raises(records.RecordError):
        records.normalize_zone_name("exa\x00mple.com")
