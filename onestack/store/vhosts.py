"""Queries for virtual hosts, their hostnames, stats and certificates.

Every hostname a vhost serves (its domain and each alias) has a row in
``vhost_names`` whose primary key is the name, so two vhosts can never claim
the same name, even when two processes write at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from onestack.store import Store
from onestack.store.certificates import (
    StoredCertificate,
    best_certificate,
    vhost_certificates,
)
from onestack.store.tables import certificates, vhost_names, vhost_stats, vhosts

# Certificate sources in the order a vhost prefers them.


class NameTaken(Exception):
    """A hostname already belongs to another vhost."""

    def __init__(self, name: str, vhost_id: int | None) -> None:
        super().__init__(f"{name} is already used by vhost {vhost_id}")
        self.name = name
        self.vhost_id = vhost_id


@dataclass(frozen=True)
class Vhost:
    id: int
    domain: str
    aliases: list[str]
    document_root: str
    managed_root: bool
    enabled: bool
    ssl: bool
    redirect_to_https: bool
    created_at: datetime
    updated_at: datetime

    @property
    def names(self) -> list[str]:
        return [self.domain, *self.aliases]


@dataclass(frozen=True)
class VhostStats:
    requests: int = 0
    bytes_served: int = 0
    response_time_total_ms: float = 0.0
    last_request: datetime | None = None

    @property
    def average_response_ms(self) -> float:
        if not self.requests:
            return 0.0
        return self.response_time_total_ms / self.requests


@dataclass(frozen=True)
class CertificateSummary:
    source: str
    names: list[str]
    not_after: datetime


def utc(value: datetime | None) -> datetime | None:
    """Return ``value`` as an aware UTC datetime (SQLite gives naive ones back)."""
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _vhost(row: Any) -> Vhost:
    return Vhost(
        id=row.id,
        domain=row.domain,
        aliases=list(row.aliases or []),
        document_root=row.document_root,
        managed_root=bool(row.managed_root),
        enabled=bool(row.enabled),
        ssl=bool(row.ssl),
        redirect_to_https=bool(row.redirect_to_https),
        created_at=utc(row.created_at),  # type: ignore[arg-type]
        updated_at=utc(row.updated_at),  # type: ignore[arg-type]
    )


async def list_vhosts(store: Store) -> list[Vhost]:
    async with store.engine.connect() as conn:
        rows = await conn.execute(select(vhosts).order_by(vhosts.c.id))
        return [_vhost(row) for row in rows]


async def get_vhost(store: Store, vhost_id: int) -> Vhost | None:
    async with store.engine.connect() as conn:
        row = (
            await conn.execute(select(vhosts).where(vhosts.c.id == vhost_id))
        ).first()
    return _vhost(row) if row is not None else None


async def _find_taken(
    conn: AsyncConnection, names: list[str], vhost_id: int | None
) -> NameTaken | None:
    query = select(vhost_names.c.name, vhost_names.c.vhost_id).where(
        vhost_names.c.name.in_(names)
    )
    if vhost_id is not None:
        query = query.where(vhost_names.c.vhost_id != vhost_id)
    row = (await conn.execute(query)).first()
    return NameTaken(row.name, row.vhost_id) if row is not None else None


async def _name_taken_after_conflict(
    store: Store, names: list[str], vhost_id: int | None
) -> NameTaken:
    # Another writer won a race between our check and our insert: look again
    # to report which name it took.
    async with store.engine.connect() as conn:
        taken = await _find_taken(conn, names, vhost_id)
    return taken or NameTaken(names[0], None)


async def create_vhost(
    store: Store,
    *,
    domain: str,
    aliases: list[str],
    document_root: str,
    managed_root: bool,
    enabled: bool,
    ssl: bool,
    redirect_to_https: bool,
) -> Vhost:
    """Insert a vhost and its names; raise NameTaken when a name is in use."""
    now = datetime.now(UTC)
    names = [domain, *aliases]
    try:
        async with store.engine.begin() as conn:
            taken = await _find_taken(conn, names, None)
            if taken is not None:
                raise taken
            result = await conn.execute(
                insert(vhosts).values(
                    domain=domain,
                    aliases=aliases,
                    document_root=document_root,
                    managed_root=managed_root,
                    enabled=enabled,
                    ssl=ssl,
                    redirect_to_https=redirect_to_https,
                    created_at=now,
                    updated_at=now,
                )
            )
            vhost_id = result.inserted_primary_key[0]
            await conn.execute(
                insert(vhost_names), [{"name": n, "vhost_id": vhost_id} for n in names]
            )
            await conn.execute(insert(vhost_stats).values(vhost_id=vhost_id))
    except IntegrityError:
        raise await _name_taken_after_conflict(store, names, None) from None
    vhost = await get_vhost(store, vhost_id)
    assert vhost is not None
    return vhost


async def update_vhost(
    store: Store, vhost_id: int, changes: dict[str, Any]
) -> Vhost | None:
    """Apply column ``changes`` to a vhost; None when it does not exist.

    When the domain or aliases change, the vhost's rows in ``vhost_names`` are
    replaced in the same transaction; raise NameTaken when a name is in use.
    """
    names: list[str] = []
    try:
        async with store.engine.begin() as conn:
            row = (
                await conn.execute(select(vhosts).where(vhosts.c.id == vhost_id))
            ).first()
            if row is None:
                return None
            current = _vhost(row)
            domain = changes.get("domain", current.domain)
            aliases = changes.get("aliases", current.aliases)
            names = [domain, *aliases]
            if names != current.names:
                taken = await _find_taken(conn, names, vhost_id)
                if taken is not None:
                    raise taken
                await conn.execute(
                    delete(vhost_names).where(vhost_names.c.vhost_id == vhost_id)
                )
                await conn.execute(
                    insert(vhost_names),
                    [{"name": n, "vhost_id": vhost_id} for n in names],
                )
            await conn.execute(
                update(vhosts)
                .where(vhosts.c.id == vhost_id)
                .values(**changes, updated_at=datetime.now(UTC))
            )
    except IntegrityError:
        raise await _name_taken_after_conflict(store, names, vhost_id) from None
    return await get_vhost(store, vhost_id)


async def delete_vhost(store: Store, vhost_id: int) -> Vhost | None:
    """Delete a vhost with its names, stats and certificates; return what it was."""
    async with store.engine.begin() as conn:
        row = (
            await conn.execute(select(vhosts).where(vhosts.c.id == vhost_id))
        ).first()
        if row is None:
            return None
        # Deleted explicitly as well as by ON DELETE CASCADE, because SQLite
        # connections opened without the foreign_keys pragma ignore cascades.
        for table in (vhost_names, vhost_stats, certificates):
            await conn.execute(delete(table).where(table.c.vhost_id == vhost_id))
        await conn.execute(delete(vhosts).where(vhosts.c.id == vhost_id))
    return _vhost(row)


async def stats_by_vhost(store: Store) -> dict[int, VhostStats]:
    async with store.engine.connect() as conn:
        rows = await conn.execute(select(vhost_stats))
        return {
            row.vhost_id: VhostStats(
                requests=row.requests or 0,
                bytes_served=row.bytes_served or 0,
                response_time_total_ms=row.response_time_total_ms or 0.0,
                last_request=utc(row.last_request),
            )
            for row in rows
        }


async def get_stats(store: Store, vhost_id: int) -> VhostStats:
    async with store.engine.connect() as conn:
        row = (
            await conn.execute(
                select(vhost_stats).where(vhost_stats.c.vhost_id == vhost_id)
            )
        ).first()
    if row is None:
        return VhostStats()
    return VhostStats(
        requests=row.requests or 0,
        bytes_served=row.bytes_served or 0,
        response_time_total_ms=row.response_time_total_ms or 0.0,
        last_request=utc(row.last_request),
    )


async def current_certificates(
    store: Store, items: list[Vhost]
) -> dict[int, CertificateSummary]:
    """Return the certificate each vhost serves, chosen as the https module does.

    That is the best current certificate covering every name of the vhost:
    ACME, then uploaded, then self-signed.
    """
    stored = await vhost_certificates(store, [vhost.id for vhost in items])
    by_vhost: dict[int, list[StoredCertificate]] = {}
    for certificate in stored:
        by_vhost.setdefault(certificate.vhost_id, []).append(certificate)
    chosen: dict[int, CertificateSummary] = {}
    for vhost in items:
        best = best_certificate(by_vhost.get(vhost.id, []), vhost.names)
        if best is not None:
            chosen[vhost.id] = CertificateSummary(
                source=best.source, names=list(best.names), not_after=best.not_after
            )
    return chosen
