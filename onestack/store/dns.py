"""DNS zones and records in the database.

Every change to a zone or its records bumps the zone's SOA serial in the
same transaction, in the YYYYMMDDnn form (RFC 1912 section 2.2).
Validation is the caller's: callbacks given to the write functions run inside
the transaction, on the rows as they are then, and raise to abort it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from onestack.store import Store
from onestack.store.tables import dns_records, dns_zones


class ZoneExists(Exception):
    """A zone of that name is already stored."""


@dataclass(frozen=True)
class ZoneRow:
    id: int
    name: str
    enabled: bool
    ttl: int
    primary_ns: str
    email: str
    serial: int
    refresh: int
    retry: int
    expire: int
    minimum: int
    allow_transfer: list[str]
    also_notify: list[str]


@dataclass(frozen=True)
class RecordRow:
    id: int
    zone_id: int
    name: str
    type: str
    data: str
    ttl: int | None
    priority: int | None


ZONE_FIELDS = tuple(f.name for f in fields(ZoneRow))
RECORD_FIELDS = tuple(f.name for f in fields(RecordRow))
# Zone fields a caller may set; the rest are the store's own.
WRITABLE_ZONE_FIELDS = frozenset(ZONE_FIELDS) - {"id", "name", "serial"}


def next_serial(current: int, now: datetime | None = None) -> int:
    """Return the serial after ``current``: today's YYYYMMDD00 or current + 1."""
    today = int((now or datetime.now(UTC)).strftime("%Y%m%d")) * 100
    return max(current + 1, today)


def _zone(row: Row[Any]) -> ZoneRow:
    values = {name: getattr(row, name) for name in ZONE_FIELDS}
    values["allow_transfer"] = list(values["allow_transfer"] or [])
    values["also_notify"] = list(values["also_notify"] or [])
    return ZoneRow(**values)


def _record(row: Row[Any]) -> RecordRow:
    return RecordRow(**{name: getattr(row, name) for name in RECORD_FIELDS})


async def _find_zone(conn: AsyncConnection, name: str) -> ZoneRow | None:
    row = (
        await conn.execute(select(dns_zones).where(dns_zones.c.name == name))
    ).first()
    return _zone(row) if row is not None else None


async def _zone_records(conn: AsyncConnection, zone_id: int) -> list[RecordRow]:
    query = (
        select(dns_records)
        .where(dns_records.c.zone_id == zone_id)
        .order_by(dns_records.c.id)
    )
    return [_record(row) for row in (await conn.execute(query)).all()]


async def _bump(
    conn: AsyncConnection, zone: ZoneRow, serial: int | None = None
) -> ZoneRow:
    new_serial = serial if serial is not None else next_serial(zone.serial)
    await conn.execute(
        update(dns_zones)
        .where(dns_zones.c.id == zone.id)
        .values(serial=new_serial, updated_at=datetime.now(UTC))
    )
    found = await _find_zone(conn, zone.name)
    assert found is not None
    return found


async def list_zones(store: Store) -> list[tuple[ZoneRow, list[RecordRow]]]:
    """Return every zone with its records, by name."""
    async with store.engine.connect() as conn:
        zones = [
            _zone(row)
            for row in (
                await conn.execute(select(dns_zones).order_by(dns_zones.c.name))
            ).all()
        ]
        rows = (
            await conn.execute(select(dns_records).order_by(dns_records.c.id))
        ).all()
    by_zone: dict[int, list[RecordRow]] = {zone.id: [] for zone in zones}
    for row in rows:
        by_zone.setdefault(row.zone_id, []).append(_record(row))
    return [(zone, by_zone[zone.id]) for zone in zones]


async def get_zone(store: Store, name: str) -> tuple[ZoneRow, list[RecordRow]] | None:
    """Return a zone and its records, or None."""
    async with store.engine.connect() as conn:
        zone = await _find_zone(conn, name)
        if zone is None:
            return None
        return zone, await _zone_records(conn, zone.id)


async def create_zone(
    store: Store, name: str, values: dict[str, Any], records: Sequence[dict[str, Any]]
) -> ZoneRow:
    """Store a new zone with its first records; raise ZoneExists."""
    now = datetime.now(UTC)
    try:
        async with store.engine.begin() as conn:
            result = await conn.execute(
                insert(dns_zones).values(
                    name=name,
                    serial=next_serial(0),
                    created_at=now,
                    updated_at=now,
                    **values,
                )
            )
            zone_id = result.inserted_primary_key[0]
            if records:
                await conn.execute(
                    insert(dns_records), [{"zone_id": zone_id, **r} for r in records]
                )
            zone = await _find_zone(conn, name)
    except IntegrityError:
        raise ZoneExists(name) from None
    assert zone is not None
    return zone


async def update_zone(
    store: Store, name: str, values: dict[str, Any]
) -> ZoneRow | None:
    """Change a zone's settings and bump its serial; None when absent."""
    async with store.engine.begin() as conn:
        zone = await _find_zone(conn, name)
        if zone is None:
            return None
        if values:
            await conn.execute(
                update(dns_zones).where(dns_zones.c.id == zone.id).values(**values)
            )
            zone = await _find_zone(conn, name)
            assert zone is not None
        return await _bump(conn, zone)


async def delete_zone(store: Store, name: str) -> bool:
    async with store.engine.begin() as conn:
        zone = await _find_zone(conn, name)
        if zone is None:
            return False
        await conn.execute(delete(dns_records).where(dns_records.c.zone_id == zone.id))
        await conn.execute(delete(dns_zones).where(dns_zones.c.id == zone.id))
        return True


async def add_record(
    store: Store,
    zone_name: str,
    values: dict[str, Any],
    check: Callable[[ZoneRow, list[RecordRow]], None],
) -> tuple[ZoneRow, RecordRow] | None:
    """Add a record after ``check`` accepts it; None when the zone is absent."""
    async with store.engine.begin() as conn:
        zone = await _find_zone(conn, zone_name)
        if zone is None:
            return None
        check(zone, await _zone_records(conn, zone.id))
        result = await conn.execute(
            insert(dns_records).values(zone_id=zone.id, **values)
        )
        record_id = result.inserted_primary_key[0]
        zone = await _bump(conn, zone)
        row = (
            await conn.execute(select(dns_records).where(dns_records.c.id == record_id))
        ).one()
        return zone, _record(row)


async def get_record(store: Store, record_id: int) -> tuple[ZoneRow, RecordRow] | None:
    async with store.engine.connect() as conn:
        row = (
            await conn.execute(select(dns_records).where(dns_records.c.id == record_id))
        ).first()
        if row is None:
            return None
        zone_row = (
            await conn.execute(select(dns_zones).where(dns_zones.c.id == row.zone_id))
        ).one()
        return _zone(zone_row), _record(row)


async def _record_and_zone(
    conn: AsyncConnection, record_id: int
) -> tuple[ZoneRow, RecordRow] | None:
    """Return a record and its zone inside the caller's transaction."""
    row = (
        await conn.execute(select(dns_records).where(dns_records.c.id == record_id))
    ).first()
    if row is None:
        return None
    record = _record(row)
    zone_row = (
        await conn.execute(select(dns_zones).where(dns_zones.c.id == record.zone_id))
    ).one()
    return _zone(zone_row), record


async def update_record(
    store: Store,
    record_id: int,
    build: Callable[[ZoneRow, RecordRow, list[RecordRow]], dict[str, Any]],
) -> tuple[ZoneRow, RecordRow] | None:
    """Replace a record's values with those ``build`` returns (it may raise)."""
    async with store.engine.begin() as conn:
        found = await _record_and_zone(conn, record_id)
        if found is None:
            return None
        zone, record = found
        values = build(zone, record, await _zone_records(conn, zone.id))
        await conn.execute(
            update(dns_records).where(dns_records.c.id == record_id).values(**values)
        )
        zone = await _bump(conn, zone)
        row = (
            await conn.execute(select(dns_records).where(dns_records.c.id == record_id))
        ).one()
        return zone, _record(row)


async def delete_record(
    store: Store, record_id: int
) -> tuple[ZoneRow, RecordRow] | None:
    async with store.engine.begin() as conn:
        found = await _record_and_zone(conn, record_id)
        if found is None:
            return None
        zone, record = found
        await conn.execute(delete(dns_records).where(dns_records.c.id == record_id))
        return await _bump(conn, zone), record


async def replace_zone(
    store: Store,
    name: str,
    create_values: dict[str, Any],
    soa_values: dict[str, Any],
    file_serial: int | None,
    records: Sequence[dict[str, Any]],
) -> tuple[ZoneRow, bool]:
    """Replace a zone's records (creating the zone if absent) in one transaction.

    The file's serial is kept when it is higher than the stored one; otherwise
    the stored serial is bumped. Returns the zone and whether it was created.
    """
    now = datetime.now(UTC)
    async with store.engine.begin() as conn:
        zone = await _find_zone(conn, name)
        created = zone is None
        if zone is None:
            await conn.execute(
                insert(dns_zones).values(
                    name=name,
                    serial=0,
                    created_at=now,
                    updated_at=now,
                    **{**create_values, **soa_values},
                )
            )
        else:
            await conn.execute(
                delete(dns_records).where(dns_records.c.zone_id == zone.id)
            )
            if soa_values:
                await conn.execute(
                    update(dns_zones)
                    .where(dns_zones.c.id == zone.id)
                    .values(**soa_values)
                )
        zone = await _find_zone(conn, name)
        assert zone is not None
        if records:
            await conn.execute(
                insert(dns_records), [{"zone_id": zone.id, **r} for r in records]
            )
        serial = (
            file_serial
            if file_serial is not None and file_serial > zone.serial
            else None
        )
        return await _bump(conn, zone, serial), created
