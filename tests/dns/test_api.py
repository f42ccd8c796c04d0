"""The DNS endpoints of the admin API over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from websockets.sync.client import connect

from tests.admin.test_websocket import receive_type
from tests.support import Server, run_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data_dir = tmp_path_factory.mktemp("dnsapi") / "data"
    with run_server(data_dir) as running:
        yield running


def create_zone(server: Server, name: str, **options: object) -> dict:
    response = server.api(
        "POST", "/api/dns/zones", json={"name": name, "options": options}
    )
    assert response.status_code == 201, response.text
    return response.json()


def add(server: Server, zone: str, **record: object):  # type: ignore[no-untyped-def]
    return server.api("POST", f"/api/dns/zones/{zone}/records", json=record)


def test_zone_created_with_soa_defaults(server: Server) -> None:
    zone = create_zone(
        server, "Create.Example.", ttl=7200, primaryNS="ns1.create.example"
    )
    today = int(datetime.now(UTC).strftime("%Y%m%d")) * 100
    assert zone["name"] == "create.example"
    assert zone["enabled"] is True
    assert zone["ttl"] == 7200
    assert zone["soa"]["primaryNS"] == "ns1.create.example"
    assert zone["soa"]["email"] == "hostmaster.create.example"
    assert today <= zone["soa"]["serial"] < today + 100
    assert zone["soa"]["minimum"] == 86400
    assert zone["allowTransfer"] == []
    assert zone["alsoNotify"] == []
    assert zone["records"] == [
        {
            "id": zone["records"][0]["id"],
            "name": "@",
            "type": "NS",
            "data": "ns1.create.example.",
            "ttl": 7200,
        }
    ]
    listed = server.api("GET", "/api/dns/zones").json()
    assert "create.example" in [z["name"] for z in listed]


def test_zone_duplicate_is_conflict(server: Server) -> None:
    create_zone(server, "dup.example")
    response = server.api("POST", "/api/dns/zones", json={"name": "DUP.example."})
    assert response.status_code == 409
    assert response.json()["code"] == "ALREADY_EXISTS"


def test_zone_invalid_options_rejected(server: Server) -> None:
    for options, field in [
        ({"allowTransfer": ["not-an-address"]}, "allowTransfer"),
        ({"alsoNotify": ["ns.example.net:53"]}, "alsoNotify"),
        ({"ttl": -1}, "options.ttl"),
    ]:
        response = server.api(
            "POST", "/api/dns/zones", json={"name": "bad.example", "options": options}
        )
        assert response.status_code == 400, options
        assert field in response.text
    assert server.api("GET", "/api/dns/zones/bad.example").status_code == 404


def test_unknown_zone_not_found(server: Server) -> None:
    response = server.api("GET", "/api/dns/zones/nowhere.example")
    assert response.status_code == 404
    assert response.json()["code"] == "NOT_FOUND"
    assert (
        add(
            server, "nowhere.example", name="www", type="A", data="192.0.2.1"
        ).status_code
        == 404
    )


def test_record_added_and_serial_bumped(server: Server) -> None:
    zone = create_zone(server, "rec.example")
    response = add(
        server, "rec.example", name="www", type="A", data="192.0.2.1", ttl=300
    )
    assert response.status_code == 201
    record = response.json()
    assert record == {
        "id": record["id"],
        "name": "www",
        "type": "A",
        "data": "192.0.2.1",
        "ttl": 300,
    }
    after = server.api("GET", "/api/dns/zones/rec.example").json()
    assert after["soa"]["serial"] == zone["soa"]["serial"] + 1
    assert record in server.api("GET", "/api/dns/zones/rec.example/records").json()


@pytest.mark.parametrize(
    ("record", "status", "reason"),
    [
        (
            {"name": "@", "type": "MX", "data": "mail.mx.example"},
            400,
            "needs a priority",
        ),
        ({"name": "v6", "type": "AAAA", "data": "192.0.2.1"}, 400, "use an A record"),
        ({"name": "v4", "type": "A", "data": "2001:db8::1"}, 400, "use an AAAA record"),
        (
            {"name": "v4", "type": "A", "data": "192.0.2.300"},
            400,
            "not an IPv4 address",
        ),
        (
            {"name": "www.other.example.", "type": "A", "data": "192.0.2.1"},
            400,
            "outside the zone",
        ),
        (
            {"name": "www", "type": "CNAME", "data": "target.example.net"},
            400,
            "must be alone",
        ),
        ({"name": "@", "type": "CNAME", "data": "target.example.net"}, 400, "apex"),
        ({"name": "www", "type": "A", "data": "192.0.2.1"}, 409, "already contains"),
        (
            {"name": "srv", "type": "SRV", "data": "5 5060", "priority": 1},
            400,
            "weight port target",
        ),
        (
            {"name": "x", "type": "A", "data": "192.0.2.1", "priority": 5},
            400,
            "only to MX and SRV",
        ),
        ({"name": "x", "type": "FOO", "data": "1"}, 400, "unsupported record type"),
        ({"name": "caa", "type": "CAA", "data": "0 issue"}, 400, "invalid CAA data"),
    ],
)
def test_invalid_record_rejected(
    server: Server, record: dict, status: int, reason: str
) -> None:
    if server.api("GET", "/api/dns/zones/mx.example").status_code == 404:
        create_zone(server, "mx.example")
        assert (
            add(
                server, "mx.example", name="www", type="A", data="192.0.2.1"
            ).status_code
            == 201
        )
    before = server.api("GET", "/api/dns/zones/mx.example").json()
    response = add(server, "mx.example", **record)
    assert response.status_code == status, response.text
    body = response.json()
    assert reason in body["error"]
    assert body["code"] == ("ALREADY_EXISTS" if status == 409 else "INVALID_REQUEST")
    assert server.api("GET", "/api/dns/zones/mx.example").json() == before


def test_record_forms_normalized(server: Server) -> None:
    create_zone(server, "forms.example")
    cases = [
        (
            {"name": "WWW.forms.example.", "type": "a", "data": "192.0.2.7"},
            "www",
            "192.0.2.7",
        ),
        (
            {"name": "@", "type": "MX", "data": "Mail.Forms.Example", "priority": 10},
            "@",
            "mail.forms.example.",
        ),
        (
            {"name": "alias", "type": "CNAME", "data": "www"},
            "alias",
            "www.forms.example.",
        ),
        (
            {
                "name": "_sip._udp",
                "type": "SRV",
                "data": "5 5060 sip.forms.example.",
                "priority": 1,
            },
            "_sip._udp",
            "5 5060 sip.forms.example.",
        ),
        (
            {"name": "txt", "type": "TXT", "data": 'plain text with "quotes"'},
            "txt",
            'plain text with "quotes"',
        ),
        (
            {"name": "txt2", "type": "TXT", "data": '"part one" "part two"'},
            "txt2",
            '"part one" "part two"',
        ),
        (
            {"name": "v6", "type": "AAAA", "data": "2001:DB8:0:0::1"},
            "v6",
            "2001:db8::1",
        ),
    ]
    for body, name, data in cases:
        response = add(server, "forms.example", **body)
        assert response.status_code == 201, response.text
        assert response.json()["name"] == name
        assert response.json()["data"] == data


def test_record_update_and_delete(server: Server) -> None:
    create_zone(server, "upd.example")
    record = add(server, "upd.example", name="www", type="A", data="192.0.2.1").json()
    serial = server.api("GET", "/api/dns/zones/upd.example").json()["soa"]["serial"]
    response = server.api(
        "PUT",
        f"/api/dns/records/{record['id']}",
        json={"data": "192.0.2.100", "ttl": 600},
    )
    assert response.status_code == 200
    assert response.json() == {
        "success": True,
        "record": {
            "id": record["id"],
            "name": "www",
            "type": "A",
            "data": "192.0.2.100",
            "ttl": 600,
        },
    }
    bad = server.api("PUT", f"/api/dns/records/{record['id']}", json={"type": "AAAA"})
    assert bad.status_code == 400
    assert (
        server.api("GET", "/api/dns/zones/upd.example").json()["soa"]["serial"]
        == serial + 1
    )

    assert server.api("DELETE", f"/api/dns/records/{record['id']}").json() == {
        "success": True
    }
    assert server.api("DELETE", f"/api/dns/records/{record['id']}").status_code == 404
    assert (
        server.api(
            "PUT", f"/api/dns/records/{record['id']}", json={"ttl": 5}
        ).status_code
        == 404
    )


def test_record_ids_unique_across_zones(server: Server) -> None:
    create_zone(server, "ids-a.example")
    create_zone(server, "ids-b.example")
    first = add(server, "ids-a.example", name="x", type="A", data="192.0.2.1").json()[
        "id"
    ]
    second = add(server, "ids-b.example", name="x", type="A", data="192.0.2.1").json()[
        "id"
    ]
    assert first != second


def test_zone_update_and_delete(server: Server) -> None:
    create_zone(server, "zupd.example")
    response = server.api(
        "PUT",
        "/api/dns/zones/zupd.example",
        json={"enabled": False, "ttl": 7200, "alsoNotify": ["127.0.0.1:5353", "[::1]"]},
    )
    assert response.status_code == 200
    zone = response.json()["zone"]
    assert response.json()["success"] is True
    assert zone["enabled"] is False
    assert zone["ttl"] == 7200
    assert zone["alsoNotify"] == ["127.0.0.1:5353", "[::1]:53"]
    assert server.api("DELETE", "/api/dns/zones/zupd.example").json() == {
        "success": True
    }
    assert server.api("GET", "/api/dns/zones/zupd.example").status_code == 404
    assert server.api("DELETE", "/api/dns/zones/zupd.example").status_code == 404


def test_import_rejects_include_and_stores_nothing(server: Server) -> None:
    create_zone(server, "inc.example")
    before = server.api("GET", "/api/dns/zones/inc.example").json()
    text = "$TTL 300\nwww A 192.0.2.1\n$INCLUDE /etc/passwd\n"
    response = server.api(
        "POST", "/api/dns/zones/inc.example/import", json={"zoneFile": text}
    )
    assert response.status_code == 400
    assert "line 3" in response.json()["error"]
    assert "$INCLUDE" in response.json()["error"]
    assert server.api("GET", "/api/dns/zones/inc.example").json() == before


def test_import_replaces_records_and_serial(server: Server) -> None:
    create_zone(server, "imp.example")
    add(server, "imp.example", name="old", type="A", data="192.0.2.1")
    current = server.api("GET", "/api/dns/zones/imp.example").json()["soa"]["serial"]
    text = (
        "$ORIGIN imp.example.\n$TTL 600\n"
        f"@ SOA ns.imp.example. admin.imp.example. {current + 50} 1h 10m 1w 1h\n"
        "@ NS ns\nns A 192.0.2.53\nnew 60 A 192.0.2.2\n"
    )
    response = server.api(
        "POST", "/api/dns/zones/imp.example/import", json={"zoneFile": text}
    )
    assert response.json() == {"success": True, "recordsImported": 3}
    zone = server.api("GET", "/api/dns/zones/imp.example").json()
    assert zone["soa"]["serial"] == current + 50
    assert zone["soa"]["primaryNS"] == "ns.imp.example"
    assert zone["ttl"] == 600
    assert sorted(
        (r["name"], r["type"], r["data"], r["ttl"]) for r in zone["records"]
    ) == [
        ("@", "NS", "ns.imp.example.", 600),
        ("new", "A", "192.0.2.2", 60),
        ("ns", "A", "192.0.2.53", 600),
    ]
    # A lower file serial: the stored one is bumped instead.
    lower = text.replace(str(current + 50), "1")
    server.api("POST", "/api/dns/zones/imp.example/import", json={"zoneFile": lower})
    assert (
        server.api("GET", "/api/dns/zones/imp.example").json()["soa"]["serial"]
        == current + 51
    )


def test_import_creates_zone_and_exports_back(server: Server) -> None:
    text = (
        "$TTL 1h\n@ SOA ns1 hostmaster 2024010101 3h 1h 1w 5m\n@ NS ns1\nns1 A 192.0.2.1\n"
        'txt TXT "one" "two"\nmx MX 5 mail.example.net.\n'
    )
    response = server.api(
        "POST", "/api/dns/zones/new.example/import", json={"zoneFile": text}
    )
    assert response.status_code == 200
    exported = server.api("GET", "/api/dns/zones/new.example/export")
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("text/plain")
    assert "$ORIGIN new.example." in exported.text
    assert 'txt\t3600\tIN\tTXT\t"one" "two"' in exported.text
    again = server.api(
        "POST", "/api/dns/zones/new.example/import", json={"zoneFile": exported.text}
    )
    assert again.json() == {"success": True, "recordsImported": 4}


def test_import_error_names_line(server: Server) -> None:
    text = "$TTL 1h\n@ NS ns1\nbad AAAA 192.0.2.1\n"
    response = server.api(
        "POST", "/api/dns/zones/err.example/import", json={"zoneFile": text}
    )
    assert response.status_code == 400
    assert "line 3" in response.json()["error"]
    assert server.api("GET", "/api/dns/zones/err.example").status_code == 404


def test_dns_events_reach_websocket(server: Server) -> None:
    port = server.config["server"]["adminPanel"]["port"]
    with connect(f"ws://admin:admin123@127.0.0.1:{port}/") as ws:
        create_zone(server, "events.example")
        created = receive_type(ws, "dnsZoneCreated")
        assert created["data"]["name"] == "events.example"

        record = add(
            server, "events.example", name="www", type="A", data="192.0.2.1"
        ).json()
        added = receive_type(ws, "dnsRecordAdded")
        assert added["data"]["zone"] == "events.example"
        assert added["data"]["record"] == record

        server.api("PUT", f"/api/dns/records/{record['id']}", json={"ttl": 60})
        assert receive_type(ws, "dnsRecordUpdated")["data"]["record"]["ttl"] == 60
        server.api("DELETE", f"/api/dns/records/{record['id']}")
        assert receive_type(ws, "dnsRecordDeleted")["data"]["id"] == record["id"]
        server.api("PUT", "/api/dns/zones/events.example", json={"ttl": 120})
        assert receive_type(ws, "dnsZoneUpdated")["data"]["name"] == "events.example"
        server.api("DELETE", "/api/dns/zones/events.example")
        assert receive_type(ws, "dnsZoneDeleted")["data"]["name"] == "events.example"
