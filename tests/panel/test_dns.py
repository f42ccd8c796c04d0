"""DNS: zones and records in the panel, answered by the dns module."""

from __future__ import annotations

import subprocess
from typing import Any

from playwright.sync_api import expect

from tests.panel.conftest import login, require_module, require_route, screenshot

ZONE = "panel-zone.test"


def dig(server: Any, name: str, rdtype: str) -> str:
    """Return dig's short output for a query to the server's dns module."""
    result = subprocess.run(
        [
            "dig",
            "@127.0.0.1",
            "-p",
            str(server.port("dns")),
            name,
            rdtype,
            "+short",
            "+norecurse",
            "+time=2",
            "+tries=1",
        ],
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    return result.stdout.strip()


def dig_until(server: Any, name: str, rdtype: str, expected: str, page: Any) -> str:
    # The dns module reloads its zones within a second of a change.
    answer = ""
    for _ in range(30):
        answer = dig(server, name, rdtype)
        if answer == expected:
            break
        page.wait_for_timeout(200)
    return answer


def open_zone(page: Any, server: Any, zone: str) -> None:
    login(page, server)
    page.get_by_role("link", name="DNS").click()
    page.get_by_role("link", name=zone).click()
    page.get_by_role("heading", name=zone).wait_for()


def test_add_record_and_dig_it(page: Any, panel_server: Any) -> None:
    require_route(panel_server, "/api/dns/zones", "DNS")
    require_module(panel_server, "dns")
    login(page, panel_server)
    page.get_by_role("link", name="DNS").click()
    page.get_by_label("Zone name").fill(ZONE)
    page.get_by_label("Primary name server").fill(f"ns1.{ZONE}")
    page.get_by_role("button", name="Add zone").click()
    page.get_by_role("heading", name=ZONE).wait_for()

    form = page.get_by_role("form", name="Add a record")
    form.get_by_label("Name").fill("www")
    form.get_by_label("Type").select_option("A")
    form.get_by_label("Data").fill("192.0.2.10")
    form.get_by_label("TTL").fill("300")
    form.get_by_role("button", name="Add record").click()
    expect(page.locator("table.records")).to_contain_text("192.0.2.10")
    screenshot(page, "dns-record-added")

    assert (
        dig_until(panel_server, f"www.{ZONE}", "A", "192.0.2.10", page) == "192.0.2.10"
    )

    row = page.locator("table.records tr", has_text="192.0.2.10")
    row.get_by_role("button", name="Edit www A").click()
    editor = page.get_by_role("form", name="Edit record www A")
    editor.get_by_label("Data").fill("192.0.2.11")
    editor.get_by_role("button", name="Save").click()
    expect(page.locator("table.records")).to_contain_text("192.0.2.11")
    screenshot(page, "dns-record-edited")

    assert (
        dig_until(panel_server, f"www.{ZONE}", "A", "192.0.2.11", page) == "192.0.2.11"
    )


def test_invalid_record_shown_at_field(page: Any, panel_server: Any) -> None:
    require_route(panel_server, "/api/dns/zones", "DNS")
    panel_server.api(
        "POST", "/api/dns/zones", json={"name": "invalid.test", "options": {}}
    )
    open_zone(page, panel_server, "invalid.test")
    form = page.get_by_role("form", name="Add a record")
    form.get_by_label("Name").fill("bad")
    form.get_by_label("Data").fill("not-an-address")
    form.get_by_role("button", name="Add record").click()

    expect(form.locator(".field.invalid")).to_contain_text("not-an-address")
    screenshot(page, "dns-invalid-record")
    records = panel_server.api("GET", "/api/dns/zones/invalid.test/records").json()
    assert all(record["data"] != "not-an-address" for record in records)


def test_delete_record(page: Any, panel_server: Any) -> None:
    require_route(panel_server, "/api/dns/zones", "DNS")
    panel_server.api(
        "POST", "/api/dns/zones", json={"name": "delete.test", "options": {}}
    )
    added = panel_server.api(
        "POST",
        "/api/dns/zones/delete.test/records",
        json={"name": "gone", "type": "TXT", "data": "remove me", "ttl": 60},
    )
    assert added.status_code == 201
    open_zone(page, panel_server, "delete.test")
    row = page.locator("table.records tr", has_text="remove me")
    row.get_by_role("button", name="Delete").click()
    row.get_by_role("button", name="Confirm: Delete").click()

    expect(row).to_have_count(0)
    records = panel_server.api("GET", "/api/dns/zones/delete.test/records").json()
    assert all(record["name"] != "gone" for record in records)


def test_import_and_export_zone(page: Any, panel_server: Any) -> None:
    require_route(panel_server, "/api/dns/zones", "DNS")
    panel_server.api(
        "POST", "/api/dns/zones", json={"name": "import.test", "options": {}}
    )
    zone_file = (
        "$ORIGIN import.test.\n$TTL 3600\n"
        "@ IN SOA ns1.import.test. hostmaster.import.test. 2030010101 3600 900 604800 300\n"
        "@ IN NS ns1.import.test.\n"
        "ns1 IN A 192.0.2.53\n"
        "imported IN A 192.0.2.77\n"
    )
    open_zone(page, panel_server, "import.test")
    page.get_by_label("Zone file", exact=True).fill(zone_file)
    page.get_by_role("button", name="Import zone file").click()
    expect(page.get_by_text("records imported")).to_be_visible()
    expect(page.locator("table.records")).to_contain_text("192.0.2.77")
    screenshot(page, "dns-imported")

    with page.expect_download() as download_info:
        page.get_by_role("button", name="Export zone file").click()
    exported = download_info.value
    text = open(exported.path()).read()

    assert exported.suggested_filename == "import.test.zone"
    assert "192.0.2.77" in text
    assert "SOA" in text
