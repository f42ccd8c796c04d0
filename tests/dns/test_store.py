"""DNS queries of the store, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from onestack.store import Store
from onestack.store import dns as store_dns
from onestack.store.dns import RecordRow, ZoneRow

ZONE_VALUES = {
    "enabled": True,
    "ttl": 3600,
    "primary_ns": "ns1.example.com",
    "email": "hostmaster.example.com",
    "refresh": 3600,
    "retry": 1800,
    "expire": 604800,
    "minimum": 300,
    "allow_transfer": ["192.0.2.0/24"],
    "also_notify": [],
}


def record(name: str, data: str) -> dict[str, object]:
    return {"name": name, "type": "A", "data": data, "ttl": None, "priority": None}


def accept(_zone: ZoneRow, _existing: list[RecordRow]) -> None:
    """Accept every record."""


def test_next_serial_forms() -> None:
    day = datetime(2026, 3, 4, tzinfo=UTC)
    assert store_dns.next_serial(0, day) == 2026030400
    assert store_dns.next_serial(2026030400, day) == 2026030401
    assert store_dns.next_serial(2026030599, day) == 2026030600
    assert store_dns.next_serial(2025010101, day) == 2026030400


async def test_zone_with_records_stored(store: Store) -> None:
    zone = await store_dns.create_zone(
        store, "example.com", ZONE_VALUES, [record("@", "192.0.2.1")]
    )
    assert zone.allow_transfer == ["192.0.2.0/24"]
    added = await store_dns.add_record(
        store, "example.com", record("www", "192.0.2.2"), accept
    )
    assert added is not None
    bumped, row = added
    assert bumped.serial == zone.serial + 1
    assert row.name == "www"
    found = await store_dns.get_zone(store, "example.com")
    assert found is not None
    assert [r.name for r in found[1]] == ["@", "www"]
    with pytest.raises(store_dns.ZoneExists):
        await store_dns.create_zone(store, "example.com", ZONE_VALUES, [])


async def test_failed_check_stores_nothing(store: Store) -> None:
    zone = await store_dns.create_zone(store, "example.com", ZONE_VALUES, [])

    def reject(_zone: ZoneRow, _existing: list[RecordRow]) -> None:
        raise ValueError("rejected")

    with pytest.raises(ValueError):
        await store_dns.add_record(
            store, "example.com", record("www", "192.0.2.2"), reject
        )
    found = await store_dns.get_zone(store, "example.com")
    assert found is not None
    assert found[0].serial == zone.serial
    assert found[1] == []


async def test_replace_zone_keeps_higher_serial(store: Store) -> None:
    zone = await store_dns.create_zone(
        store, "example.com", ZONE_VALUES, [record("old", "192.0.2.1")]
    )
    replaced, created = await store_dns.replace_zone(
        store,
        "example.com",
        ZONE_VALUES,
        {"minimum": 60},
        zone.serial + 10,
        [record("new", "192.0.2.2")],
    )
    assert created is False
    assert replaced.serial == zone.serial + 10
    assert replaced.minimum == 60
    found = await store_dns.get_zone(store, "example.com")
    assert found is not None
    assert [r.name for r in found[1]] == ["new"]

    lower, _ = await store_dns.replace_zone(
        store, "example.com", ZONE_VALUES, {}, 5, []
    )
    assert lower.serial == zone.serial + 11


async def test_record_update_delete_and_zone_delete(store: Store) -> None:
    await store_dns.create_zone(store, "example.com", ZONE_VALUES, [])
    added = await store_dns.add_record(
        store, "example.com", record("www", "192.0.2.2"), accept
    )
    assert added is not None
    record_id = added[1].id
    updated = await store_dns.update_record(
        store, record_id, lambda z, r, e: {"data": "192.0.2.3"}
    )
    assert updated is not None
    assert updated[1].data == "192.0.2.3"
    deleted = await store_dns.delete_record(store, record_id)
    assert deleted is not None
    assert await store_dns.delete_record(store, record_id) is None
    assert await store_dns.delete_zone(store, "example.com") is True
    assert await store_dns.get_zone(store, "example.com") is None
    assert await store_dns.list_zones(store) == []
