"""Queries for TLS certificates and the vhosts that need them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, insert, select

from onestack.store import Store
from onestack.store.tables import certificates, vhosts
from onestack.tls.certificates import (
    SOURCE_PRIORITY,
    SOURCE_SELF_SIGNED,
    as_utc,
    uncovered_names,
    utc_now,
)


@dataclass(frozen=True)
class TlsVhost:
    """A vhost's TLS fields: its id, domain, aliases and flags."""

    id: int
    domain: str
    aliases: tuple[str, ...]
    enabled: bool
    ssl: bool

    @property
    def names(self) -> list[str]:
        """Return the domain, then the aliases, lowercased and without repeats."""
        return list(dict.fromkeys(n.lower() for n in (self.domain, *self.aliases)))


@dataclass(frozen=True)
class StoredCertificate:
    id: int
    vhost_id: int
    source: str
    names: list[str]
    not_before: datetime
    not_after: datetime
    cert_pem: str
    key_pem: str
    created_at: datetime


def _vhost(row: object) -> TlsVhost:
    return TlsVhost(
        id=row.id,  # type: ignore[attr-defined]
        domain=row.domain,  # type: ignore[attr-defined]
        aliases=tuple(row.aliases or ()),  # type: ignore[attr-defined]
        enabled=row.enabled,  # type: ignore[attr-defined]
        ssl=row.ssl,  # type: ignore[attr-defined]
    )


def _certificate(row: object) -> StoredCertificate:
    return StoredCertificate(
        id=row.id,  # type: ignore[attr-defined]
        vhost_id=row.vhost_id,  # type: ignore[attr-defined]
        source=row.source,  # type: ignore[attr-defined]
        names=list(row.names),  # type: ignore[attr-defined]
        not_before=as_utc(row.not_before),  # type: ignore[attr-defined]
        not_after=as_utc(row.not_after),  # type: ignore[attr-defined]
        cert_pem=row.cert_pem,  # type: ignore[attr-defined]
        key_pem=row.key_pem,  # type: ignore[attr-defined]
        created_at=as_utc(row.created_at),  # type: ignore[attr-defined]
    )


_VHOST_COLUMNS = (
    vhosts.c.id,
    vhosts.c.domain,
    vhosts.c.aliases,
    vhosts.c.enabled,
    vhosts.c.ssl,
)


async def tls_vhosts(store: Store) -> list[TlsVhost]:
    """Return the enabled vhosts with ``ssl: true``."""
    query = (
        select(*_VHOST_COLUMNS)
        .where(vhosts.c.enabled.is_(True), vhosts.c.ssl.is_(True))
        .order_by(vhosts.c.id)
    )
    async with store.engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    return [_vhost(row) for row in rows]


async def get_vhost(store: Store, vhost_id: int) -> TlsVhost | None:
    async with store.engine.connect() as conn:
        row = (
            await conn.execute(select(*_VHOST_COLUMNS).where(vhosts.c.id == vhost_id))
        ).first()
    return None if row is None else _vhost(row)


async def vhost_certificates(
    store: Store, vhost_ids: list[int] | None = None
) -> list[StoredCertificate]:
    """Return the stored certificates of some vhosts (all vhosts by default)."""
    query = select(certificates).order_by(certificates.c.id)
    if vhost_ids is not None:
        query = query.where(certificates.c.vhost_id.in_(vhost_ids))
    async with store.engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    return [_certificate(row) for row in rows]


def usable(certificate: StoredCertificate, hostnames: list[str], now: datetime) -> bool:
    """Tell whether a certificate is current and covers every hostname."""
    if not certificate.not_before <= now < certificate.not_after:
        return False
    return not uncovered_names(certificate.names, hostnames)


def best_certificate(
    candidates: list[StoredCertificate],
    hostnames: list[str],
    now: datetime | None = None,
) -> StoredCertificate | None:
    """Pick the certificate a vhost serves, or None when none is usable.

    ACME beats uploaded beats self-signed; among ACME and uploaded ones the
    latest expiry wins. Among self-signed ones the oldest row wins, so worker
    processes that each created one at the same moment still agree.
    """
    now = now or utc_now()

    def rank(certificate: StoredCertificate) -> tuple[int, float]:
        priority = SOURCE_PRIORITY.get(certificate.source, len(SOURCE_PRIORITY))
        if certificate.source == SOURCE_SELF_SIGNED:
            return priority, certificate.id
        return priority, -certificate.not_after.timestamp()

    current = [c for c in candidates if usable(c, hostnames, now)]
    return min(current, key=rank, default=None)


async def find_best_certificate(
    store: Store, vhost: TlsVhost, now: datetime | None = None
) -> StoredCertificate | None:
    return best_certificate(
        await vhost_certificates(store, [vhost.id]), vhost.names, now
    )


async def add_certificate(
    store: Store,
    vhost_id: int,
    source: str,
    names: list[str],
    not_before: datetime,
    not_after: datetime,
    cert_pem: str,
    key_pem: str,
    replace: bool = False,
) -> int:
    """Store a certificate and return its id.

    With ``replace``, the vhost's other certificates of the same source are
    deleted in the same transaction.
    """
    async with store.engine.begin() as conn:
        if replace:
            await conn.execute(
                delete(certificates).where(
                    certificates.c.vhost_id == vhost_id,
                    certificates.c.source == source,
                )
            )
        result = await conn.execute(
            insert(certificates).values(
                vhost_id=vhost_id,
                source=source,
                names=names,
                not_before=not_before,
                not_after=not_after,
                cert_pem=cert_pem,
                key_pem=key_pem,
                created_at=utc_now(),
            )
        )
    return int(result.inserted_primary_key[0])  # type: ignore[index]


async def delete_certificates(
    store: Store, vhost_id: int, source: str, expired_before: datetime | None = None
) -> int:
    """Delete a vhost's certificates of one source; return how many went.

    With ``expired_before``, only those that expire before that moment.
    """
    query = delete(certificates).where(
        certificates.c.vhost_id == vhost_id, certificates.c.source == source
    )
    if expired_before is not None:
        query = query.where(certificates.c.not_after < expired_before)
    async with store.engine.begin() as conn:
        result = await conn.execute(query)
    return int(result.rowcount or 0)
