"""DNS zones and records, BIND export and import."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field

from onestack.admin.app import AdminState, get_state
from onestack.admin.errors import conflict, invalid, not_found
from onestack.admin.params import RowIdPath
from onestack.dns import records, zonefile
from onestack.dns.records import DuplicateRecord, Record, RecordError
from onestack.store import dns as store_dns
from onestack.store.dns import RecordRow, ZoneExists, ZoneRow

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/api/dns", tags=["dns"])

TTL = Field(None, ge=0, le=records.MAX_TTL)


class ZoneOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool | None = None
    ttl: int | None = TTL
    primaryNS: str | None = None
    email: str | None = None
    refresh: int | None = TTL
    retry: int | None = TTL
    expire: int | None = TTL
    minimum: int | None = TTL
    allowTransfer: list[str] | None = None
    alsoNotify: list[str] | None = None


class ZoneCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(max_length=253)
    options: ZoneOptions = ZoneOptions()


class ZoneUpdate(ZoneOptions):
    """Settings at the top level (as the reference shows) or under ``options``."""

    options: ZoneOptions | None = None


class RecordCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field("@", max_length=253)
    type: str = Field(max_length=10)
    data: str = Field(max_length=20_000)
    ttl: int | None = TTL
    priority: int | None = None


class RecordUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, max_length=253)
    type: str | None = Field(None, max_length=10)
    data: str | None = Field(None, max_length=20_000)
    ttl: int | None = TTL
    priority: int | None = None


class ZoneImport(BaseModel):
    model_config = ConfigDict(extra="forbid")

    zoneFile: str


def record_json(zone: ZoneRow, record: RecordRow) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": record.id,
        "name": record.name,
        "type": record.type,
        "data": record.data,
        "ttl": zone.ttl if record.ttl is None else record.ttl,
    }
    if record.priority is not None:
        body["priority"] = record.priority
    return body


def zone_json(zone: ZoneRow, zone_records: list[RecordRow]) -> dict[str, Any]:
    return {
        "name": zone.name,
        "enabled": zone.enabled,
        "ttl": zone.ttl,
        "soa": {
            "primaryNS": zone.primary_ns,
            "email": zone.email,
            "serial": zone.serial,
            "refresh": zone.refresh,
            "retry": zone.retry,
            "expire": zone.expire,
            "minimum": zone.minimum,
        },
        "allowTransfer": zone.allow_transfer,
        "alsoNotify": zone.also_notify,
        "records": [record_json(zone, r) for r in zone_records],
    }


def as_record(row: RecordRow) -> Record:
    return Record(row.name, row.type, row.data, row.ttl, row.priority, row.id)


def zone_name(text: str) -> str:
    try:
        return records.normalize_zone_name(text)
    except RecordError as exc:
        raise invalid(exc.field, exc.message) from None


def zone_values(options: ZoneOptions) -> dict[str, Any]:
    """Return the store columns for the options that were given, validated."""
    given = options.model_dump(exclude_unset=True, exclude_none=True)
    columns = {
        "enabled": "enabled",
        "ttl": "ttl",
        "refresh": "refresh",
        "retry": "retry",
        "expire": "expire",
        "minimum": "minimum",
    }
    values = {columns[key]: value for key, value in given.items() if key in columns}
    try:
        if "primaryNS" in given:
            values["primary_ns"] = records.normalize_hostname(
                "primaryNS", given["primaryNS"]
            )
        if "email" in given:
            values["email"] = records.normalize_email(given["email"])
        if "allowTransfer" in given:
            values["allow_transfer"] = [
                records.normalize_network(v) for v in given["allowTransfer"]
            ]
        if "alsoNotify" in given:
            values["also_notify"] = [
                records.normalize_target(v) for v in given["alsoNotify"]
            ]
    except RecordError as exc:
        raise invalid(exc.field, exc.message) from None
    return values


def default_zone_values(name: str) -> dict[str, Any]:
    return {
        "enabled": True,
        "ttl": 3600,
        "primary_ns": f"ns1.{name}",
        "email": f"hostmaster.{name}",
        "refresh": 3600,
        "retry": 1800,
        "expire": 604800,
        "minimum": 86400,
        "allow_transfer": [],
        "also_notify": [],
    }


def record_error(exc: RecordError) -> Exception:
    if isinstance(exc, DuplicateRecord):
        return conflict(exc.field, exc.message)
    return invalid(exc.field, exc.message)


async def find_zone(state: AdminState, name: str) -> tuple[ZoneRow, list[RecordRow]]:
    found = await store_dns.get_zone(state.store, zone_name(name))
    if found is None:
        raise not_found("zone", name)
    return found


@router.get("/zones")
async def list_zones(state: AdminState = Depends(get_state)) -> list[dict[str, Any]]:
    return [zone_json(z, r) for z, r in await store_dns.list_zones(state.store)]


@router.post("/zones", status_code=201)
async def create_zone(
    body: ZoneCreate, state: AdminState = Depends(get_state)
) -> dict[str, Any]:
    name = zone_name(body.name)
    values = {**default_zone_values(name), **zone_values(body.options)}
    # A zone needs NS records at its apex (RFC 1034 section 4.2.1); the first
    # one names the primary server.
    apex_ns = {
        "name": records.APEX,
        "type": "NS",
        "data": values["primary_ns"] + ".",
        "ttl": None,
        "priority": None,
    }
    try:
        zone = await store_dns.create_zone(state.store, name, values, [apex_ns])
    except ZoneExists:
        raise conflict("name", f"zone {name} already exists") from None
    found = await store_dns.get_zone(state.store, name)
    assert found is not None
    logger.info("zone %s created", name)
    await state.hub.publish("dnsZoneCreated", {"name": name, "serial": zone.serial})
    return zone_json(*found)


@router.get("/zones/{name}")
async def get_zone(name: str, state: AdminState = Depends(get_state)) -> dict[str, Any]:
    return zone_json(*await find_zone(state, name))


@router.put("/zones/{name}")
async def update_zone(
    name: str, body: ZoneUpdate, state: AdminState = Depends(get_state)
) -> dict[str, Any]:
    values = zone_values(body)
    if body.options is not None:
        values.update(zone_values(body.options))
    zone = await store_dns.update_zone(state.store, zone_name(name), values)
    if zone is None:
        raise not_found("zone", name)
    found = await store_dns.get_zone(state.store, zone.name)
    assert found is not None
    await state.hub.publish(
        "dnsZoneUpdated", {"name": zone.name, "serial": zone.serial}
    )
    return {"success": True, "zone": zone_json(*found)}


@router.delete("/zones/{name}")
async def delete_zone(
    name: str, state: AdminState = Depends(get_state)
) -> dict[str, Any]:
    normal = zone_name(name)
    if not await store_dns.delete_zone(state.store, normal):
        raise not_found("zone", name)
    logger.info("zone %s deleted", normal)
    await state.hub.publish("dnsZoneDeleted", {"name": normal})
    return {"success": True}


@router.get("/zones/{name}/records")
async def list_records(
    name: str, state: AdminState = Depends(get_state)
) -> list[dict[str, Any]]:
    zone, zone_records = await find_zone(state, name)
    return [record_json(zone, r) for r in zone_records]


@router.post("/zones/{name}/records", status_code=201)
async def add_record(
    name: str, body: RecordCreate, state: AdminState = Depends(get_state)
) -> dict[str, Any]:
    zone_text = zone_name(name)
    try:
        record = records.validate_record(
            zone_text, body.name, body.type, body.data, body.ttl, body.priority
        )
    except RecordError as exc:
        raise record_error(exc) from None

    def check(_zone: ZoneRow, existing: list[RecordRow]) -> None:
        records.check_rrset_rules(zone_text, [as_record(r) for r in existing], record)

    values = {
        "name": record.name,
        "type": record.type,
        "data": record.data,
        "ttl": record.ttl,
        "priority": record.priority,
    }
    try:
        added = await store_dns.add_record(state.store, zone_text, values, check)
    except RecordError as exc:
        raise record_error(exc) from None
    if added is None:
        raise not_found("zone", name)
    zone, row = added
    body_json = record_json(zone, row)
    await state.hub.publish(
        "dnsRecordAdded",
        {"zone": zone.name, "serial": zone.serial, "record": body_json},
    )
    return body_json


@router.put("/records/{record_id}")
async def update_record(
    record_id: RowIdPath, body: RecordUpdate, state: AdminState = Depends(get_state)
) -> dict[str, Any]:
    given = body.model_dump(exclude_unset=True)

    def build(
        zone: ZoneRow, old: RecordRow, existing: list[RecordRow]
    ) -> dict[str, Any]:
        rdtype = (given.get("type") or old.type).upper()
        if "priority" in given:
            priority = given["priority"]
        else:
            priority = old.priority if rdtype in records.PRIORITY_TYPES else None
        record = records.validate_record(
            zone.name,
            given.get("name") or old.name,
            rdtype,
            given.get("data") or old.data,
            given["ttl"] if "ttl" in given else old.ttl,
            priority,
        )
        record = Record(
            record.name, record.type, record.data, record.ttl, record.priority, old.id
        )
        records.check_rrset_rules(zone.name, [as_record(r) for r in existing], record)
        return {
            "name": record.name,
            "type": record.type,
            "data": record.data,
            "ttl": record.ttl,
            "priority": record.priority,
        }

    try:
        updated = await store_dns.update_record(state.store, record_id, build)
    except RecordError as exc:
        raise record_error(exc) from None
    if updated is None:
        raise not_found("record", record_id)
    zone, row = updated
    body_json = record_json(zone, row)
    await state.hub.publish(
        "dnsRecordUpdated",
        {"zone": zone.name, "serial": zone.serial, "record": body_json},
    )
    return {"success": True, "record": body_json}


@router.delete("/records/{record_id}")
async def delete_record(
    record_id: RowIdPath, state: AdminState = Depends(get_state)
) -> dict[str, Any]:
    deleted = await store_dns.delete_record(state.store, record_id)
    if deleted is None:
        raise not_found("record", record_id)
    zone, _row = deleted
    await state.hub.publish(
        "dnsRecordDeleted", {"zone": zone.name, "serial": zone.serial, "id": record_id}
    )
    return {"success": True}


@router.get("/zones/{name}/export", response_class=PlainTextResponse)
async def export_zone(
    name: str, state: AdminState = Depends(get_state)
) -> PlainTextResponse:
    zone, zone_records = await find_zone(state, name)
    soa = zonefile.Soa(
        zone.primary_ns,
        zone.email,
        zone.serial,
        zone.refresh,
        zone.retry,
        zone.expire,
        zone.minimum,
        zone.ttl,
    )
    text = zonefile.export(
        zone.name, soa, zone.ttl, [as_record(r) for r in zone_records]
    )
    return PlainTextResponse(text, media_type="text/plain")


@router.post("/zones/{name}/import")
async def import_zone(
    name: str, body: ZoneImport, state: AdminState = Depends(get_state)
) -> dict[str, Any]:
    zone_text = zone_name(name)
    try:
        parsed = zonefile.parse(zone_text, body.zoneFile)
    except zonefile.ZoneFileError as exc:
        raise invalid("zoneFile", str(exc)) from None

    soa_values: dict[str, Any] = {}
    if parsed.soa is not None:
        soa = parsed.soa
        soa_values = {
            "primary_ns": soa.primary_ns,
            "email": soa.email,
            "refresh": soa.refresh,
            "retry": soa.retry,
            "expire": soa.expire,
            "minimum": soa.minimum,
            "ttl": soa.ttl,
        }
    if parsed.default_ttl is not None:
        soa_values["ttl"] = parsed.default_ttl
    zone_ttl = soa_values.get("ttl")
    rows = [
        {
            "name": r.name,
            "type": r.type,
            "data": r.data,
            # A TTL equal to the file's default follows the zone's TTL.
            "ttl": None if r.ttl == zone_ttl else r.ttl,
            "priority": r.priority,
        }
        for r in parsed.records
    ]
    zone, created = await store_dns.replace_zone(
        state.store,
        zone_text,
        default_zone_values(zone_text),
        soa_values,
        parsed.soa.serial if parsed.soa is not None else None,
        rows,
    )
    logger.info(
        "zone %s imported: %d records, serial %d", zone.name, len(rows), zone.serial
    )
    event = "dnsZoneCreated" if created else "dnsZoneUpdated"
    await state.hub.publish(
        event, {"name": zone.name, "serial": zone.serial, "recordsImported": len(rows)}
    )
    return {"success": True, "recordsImported": len(rows)}
