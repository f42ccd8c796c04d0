"""The authoritative server over real sockets, queried with dig and kdig."""

from __future__ import annotations

import random
import socket
import subprocess
import time
from collections.abc import Iterator

import dns.message
import dns.rdatatype
import pytest

from tests.dns.digtool import dig
from tests.dns.zones import example_zone
from tests.support import Server, run_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data_dir = tmp_path_factory.mktemp("dns") / "data"
    overrides = {"modules": {"dns": {"enabled": True, "workers": 2}}}
    with run_server(data_dir, overrides) as running:
        running.wait_module("dns")
        response = running.api(
            "POST",
            "/api/dns/zones/example.com/import",
            json={"zoneFile": example_zone()},
        )
        assert response.status_code == 200, response.text
        wait_for_answer(running, "www.example.com", "CNAME", "example.com.")
        yield running


def dns_port(server: Server) -> int:
    return server.port("dns")


def wait_for_answer(
    server: Server, name: str, rdtype: str, expected: str, queries: int = 12
) -> None:
    """Wait until ``queries`` queries in a row (each from a new source port,
    so spread over the workers) return ``expected``."""
    deadline = time.monotonic() + 10
    while True:
        results = [dig(dns_port(server), name, rdtype).rdata() for _ in range(queries)]
        if all(any(expected in item for item in rdata) for rdata in results):
            return
        if time.monotonic() > deadline:
            raise AssertionError(
                f"{name} {rdtype} never answered {expected}: {results}"
            )
        time.sleep(0.2)


@pytest.mark.parametrize(
    ("name", "rdtype", "expected"),
    [
        ("example.com", "A", "192.0.2.10"),
        ("example.com", "AAAA", "2001:db8::10"),
        ("example.com", "MX", "10 mail.example.com."),
        ("example.com", "NS", "ns2.example.net."),
        ("example.com", "TXT", '"v=spf1 mx -all"'),
        ("example.com", "CAA", '0 issue "letsencrypt.org"'),
        ("example.com", "SOA", "ns1.example.com. hostmaster.example.com."),
        ("www.example.com", "CNAME", "example.com."),
        ("_sip._tcp.example.com", "SRV", "10 60 5060 sip.example.com."),
        ("10.example.com", "PTR", "host10.example.com."),
        ("dkim._domainkey.example.com", "TXT", '"v=DKIM1; k=rsa; " "p=MIIB'),
    ],
)
def test_record_type_answered(
    server: Server, name: str, rdtype: str, expected: str
) -> None:
    result = dig(dns_port(server), name, rdtype)
    assert result.status == "NOERROR"
    assert "aa" in result.flags
    assert "ra" not in result.flags
    assert rdtype in result.types()
    assert any(rdata.startswith(expected) for rdata in result.rdata()), result.text


def test_mx_answer_has_address(server: Server) -> None:
    result = dig(dns_port(server), "example.com", "MX")
    assert ["mail.example.com.", "300", "IN", "A", "192.0.2.25"] in result.additional


def test_nxdomain_has_soa(server: Server) -> None:
    result = dig(dns_port(server), "missing.example.com", "A")
    assert result.status == "NXDOMAIN"
    assert "aa" in result.flags
    assert result.answer == []
    assert result.types("authority") == ["SOA"]
    # Negative TTL: the smaller of the SOA TTL (1h) and its minimum (5m).
    assert result.authority[0][1] == "300"


def test_nodata_has_soa(server: Server) -> None:
    result = dig(dns_port(server), "mail.example.com", "AAAA")
    assert result.status == "NOERROR"
    assert "aa" in result.flags
    assert result.answer == []
    assert result.types("authority") == ["SOA"]


def test_empty_non_terminal_is_nodata(server: Server) -> None:
    result = dig(dns_port(server), "b.deep.example.com", "A")
    assert result.status == "NOERROR"
    assert result.types("authority") == ["SOA"]


def test_wildcard_synthesizes_owner(server: Server) -> None:
    result = dig(dns_port(server), "shop.apps.example.com", "A")
    assert result.status == "NOERROR"
    assert result.answer == [
        ["shop.apps.example.com.", "3600", "IN", "A", "192.0.2.80"]
    ]


def test_wildcard_nodata_for_other_type(server: Server) -> None:
    result = dig(dns_port(server), "shop.apps.example.com", "MX")
    assert result.status == "NOERROR"
    assert result.answer == []
    assert result.types("authority") == ["SOA"]


def test_wildcard_not_below_existing_name(server: Server) -> None:
    # RFC 4592 section 3.3.1: the closest encloser b.deep.example.com has no
    # wildcard child, so the name does not exist.
    result = dig(dns_port(server), "x.a.b.deep.example.com", "A")
    assert result.status == "NXDOMAIN"


def test_cname_chain_followed(server: Server) -> None:
    result = dig(dns_port(server), "chain.example.com", "A")
    assert result.status == "NOERROR"
    assert "aa" in result.flags
    assert result.answer == [
        ["chain.example.com.", "3600", "IN", "CNAME", "www.example.com."],
        ["www.example.com.", "3600", "IN", "CNAME", "example.com."],
        ["example.com.", "3600", "IN", "A", "192.0.2.10"],
    ]


def test_cname_out_of_zone_stops(server: Server) -> None:
    result = dig(dns_port(server), "outside.example.com", "A")
    assert result.status == "NOERROR"
    assert result.answer == [
        ["outside.example.com.", "3600", "IN", "CNAME", "www.example.org."]
    ]


def test_delegation_is_referral_with_glue(server: Server) -> None:
    result = dig(dns_port(server), "host.sub.example.com", "A")
    assert result.status == "NOERROR"
    assert "aa" not in result.flags
    assert result.answer == []
    assert result.authority == [
        ["sub.example.com.", "3600", "IN", "NS", "ns.sub.example.com."]
    ]
    assert ["ns.sub.example.com.", "3600", "IN", "A", "192.0.2.99"] in result.additional


def test_truncated_over_udp_then_tcp(server: Server) -> None:
    udp = dig(dns_port(server), "big.example.com", "TXT", "+ignore")
    assert udp.status == "NOERROR"
    assert "tc" in udp.flags
    assert udp.answer == []
    plain = dig(dns_port(server), "big.example.com", "TXT", "+ignore", "+noedns")
    assert "tc" in plain.flags
    tcp = dig(dns_port(server), "big.example.com", "TXT", "+tcp")
    assert "tc" not in tcp.flags
    assert "aa" in tcp.flags
    assert len(tcp.answer) == 1
    assert tcp.answer[0][4].startswith('"xxxx')


def test_small_answer_fits_without_edns(server: Server) -> None:
    result = dig(dns_port(server), "example.com", "MX", "+noedns")
    assert "tc" not in result.flags
    assert len(result.answer) == 2


def test_other_zone_refused(server: Server) -> None:
    result = dig(dns_port(server), "www.example.org", "A")
    assert result.status == "REFUSED"
    assert "aa" not in result.flags
    assert "ra" not in result.flags
    assert result.answer == []


def test_chaos_class_refused(server: Server) -> None:
    result = dig(dns_port(server), "version.bind", "TXT", "-c", "CH")
    assert result.status == "REFUSED"


def test_any_answered_minimally(server: Server) -> None:
    result = dig(dns_port(server), "example.com", "ANY")
    assert result.status == "NOERROR"
    assert len(result.answer) == 1


def test_question_case_preserved(server: Server) -> None:
    result = dig(dns_port(server), "WwW.ExAmPlE.CoM", "CNAME")
    question = result.text.split(";; QUESTION SECTION:")[1].split(";; ANSWER SECTION:")[
        0
    ]
    assert "WwW.ExAmPlE.CoM." in question
    assert result.answer[0][0] == "WwW.ExAmPlE.CoM."


def test_edns_payload_and_do_bit(server: Server) -> None:
    output = subprocess.run(
        [
            "kdig",
            "@127.0.0.1",
            "-p",
            str(dns_port(server)),
            "+dnssec",
            "+bufsize=4096",
            "example.com",
            "A",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    ).stdout
    assert "UDP size: 1232" in output
    assert "flags: do" in output


def test_unknown_edns_version_badvers(server: Server) -> None:
    result = dig(dns_port(server), "example.com", "A", "+edns=1", "+noednsnegotiation")
    assert result.status == "BADVERS"


def test_axfr_refused_then_allowed(server: Server) -> None:
    refused = subprocess.run(
        ["dig", "@127.0.0.1", "-p", str(dns_port(server)), "example.com", "AXFR"],
        capture_output=True,
        text=True,
        timeout=30,
    ).stdout
    assert "Transfer failed" in refused

    response = server.api(
        "PUT", "/api/dns/zones/example.com", json={"allowTransfer": ["127.0.0.0/8"]}
    )
    assert response.status_code == 200
    serial = str(response.json()["zone"]["soa"]["serial"])
    wait_for_answer(server, "example.com", "SOA", serial)

    output = subprocess.run(
        ["dig", "@127.0.0.1", "-p", str(dns_port(server)), "example.com", "AXFR"],
        capture_output=True,
        text=True,
        timeout=30,
    ).stdout
    lines = [
        line.split()
        for line in output.splitlines()
        if line and not line.startswith(";")
    ]
    assert lines[0][3] == "SOA"
    assert lines[-1][3] == "SOA"
    assert lines[0][6] == serial
    assert ["ns.sub.example.com.", "3600", "IN", "A", "192.0.2.99"] in lines
    # The SOA twice and the 22 other records of the file.
    assert len(lines) == 2 + 22

    ixfr = subprocess.run(
        [
            "dig",
            "@127.0.0.1",
            "-p",
            str(dns_port(server)),
            "example.com",
            "IXFR=1",
            "+tcp",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    ).stdout
    assert (
        len([line for line in ixfr.splitlines() if line and not line.startswith(";")])
        == 24
    )

    server.api("PUT", "/api/dns/zones/example.com", json={"allowTransfer": []})


def test_api_change_answered_by_every_worker(server: Server) -> None:
    response = server.api(
        "POST",
        "/api/dns/zones/example.com/records",
        json={"name": "new", "type": "A", "data": "192.0.2.123"},
    )
    assert response.status_code == 201
    wait_for_answer(server, "new.example.com", "A", "192.0.2.123", queries=20)

    record_id = response.json()["id"]
    assert server.api("DELETE", f"/api/dns/records/{record_id}").status_code == 200
    deadline = time.monotonic() + 10
    while dig(dns_port(server), "new.example.com", "A").status != "NXDOMAIN":
        assert time.monotonic() < deadline
        time.sleep(0.2)


def _mutations(seed: int, count: int) -> Iterator[bytes]:
    rng = random.Random(seed)
    base = dns.message.make_query("www.example.com", "A", use_edns=0).to_wire()
    for index in range(count):
        kind = index % 4
        if kind == 0:
            yield rng.randbytes(rng.randint(0, 600))
        elif kind == 1:
            packet = bytearray(base)
            for _ in range(rng.randint(1, 6)):
                packet[rng.randrange(len(packet))] = rng.randrange(256)
            yield bytes(packet)
        elif kind == 2:
            yield base[: rng.randrange(len(base))]
        else:
            yield base + rng.randbytes(rng.randint(1, 40))


def test_malformed_packets_do_not_stop_workers(server: Server) -> None:
    port = dns_port(server)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(0.01)
        for packet in _mutations(seed=4, count=3000):
            sock.sendto(packet, ("127.0.0.1", port))
            try:
                sock.recv(4096)
            except TimeoutError:
                pass
    # Over TCP the server may close a connection after garbage: reconnect.
    tcp = socket.create_connection(("127.0.0.1", port), timeout=5)
    for packet in _mutations(seed=5, count=200):
        try:
            tcp.sendall(len(packet).to_bytes(2) + packet)
        except ConnectionError:
            tcp.close()
            tcp = socket.create_connection(("127.0.0.1", port), timeout=5)
    tcp.close()
    assert server.process.poll() is None
    for _ in range(10):
        assert dig(port, "www.example.com", "CNAME").rdata() == ["example.com."]
    assert "Traceback" not in server.log()
    assert "restart" not in server.log().lower()


def test_formerr_for_two_questions(server: Server) -> None:
    query = dns.message.make_query("www.example.com", "A")
    query.question.append(query.question[0])
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(5)
        sock.sendto(query.to_wire(), ("127.0.0.1", dns_port(server)))
        reply = sock.recv(4096)
    assert reply[:2] == query.to_wire()[:2]
    assert reply[3] & 0x0F == 1  # FORMERR
