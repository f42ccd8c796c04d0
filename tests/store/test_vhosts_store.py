"""Vhost queries on SQLite and PostgreSQL: names, stats, certificate choice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert, update

from onestack.store import Store
from onestack.store import vhosts as vhost_store
from onestack.store.tables import certificates, vhost_stats


async def create(store: Store, domain: str, aliases: list[str] | None = None) -> Any:
    return await vhost_store.create_vhost(
        store,
        domain=domain,
        aliases=aliases or [],
        document_root=f"/srv/{domain}",
        managed_root=False,
        enabled=True,
        ssl=False,
        redirect_to_https=False,
    )


async def test_create_and_read_back(store: Store) -> None:
    vhost = await create(store, "example.com", ["www.example.com"])
    assert vhost.names == ["example.com", "www.example.com"]
    assert vhost.created_at.tzinfo is not None
    assert await vhost_store.get_vhost(store, vhost.id) == vhost
    assert await vhost_store.list_vhosts(store) == [vhost]
    assert await vhost_store.get_stats(store, vhost.id) == vhost_store.VhostStats()


async def test_name_taken_names_owner(store: Store) -> None:
    first = await create(store, "example.com", ["www.example.com"])
    with pytest.raises(vhost_store.NameTaken) as taken:
        await create(store, "other.com", ["www.example.com"])
    assert taken.value.name == "www.example.com"
    assert taken.value.vhost_id == first.id
    assert len(await vhost_store.list_vhosts(store)) == 1


async def test_update_replaces_names(store: Store) -> None:
    first = await create(store, "example.com", ["www.example.com"])
    second = await create(store, "other.com")
    updated = await vhost_store.update_vhost(
        store, first.id, {"aliases": ["blog.example.com"]}
    )
    assert updated is not None
    assert updated.aliases == ["blog.example.com"]
    with pytest.raises(vhost_store.NameTaken):
        await vhost_store.update_vhost(store, second.id, {"domain": "blog.example.com"})
    assert (
        await vhost_store.update_vhost(store, second.id, {"domain": "www.example.com"})
    ) is not None
    assert await vhost_store.update_vhost(store, 999, {"enabled": False}) is None


async def test_delete_frees_names_and_stats(store: Store) -> None:
    vhost = await create(store, "example.com", ["www.example.com"])
    deleted = await vhost_store.delete_vhost(store, vhost.id)
    assert deleted is not None
    assert deleted.domain == "example.com"
    assert await vhost_store.delete_vhost(store, vhost.id) is None
    assert await vhost_store.stats_by_vhost(store) == {}
    await create(store, "www.example.com")


async def test_stats_average(store: Store) -> None:
    vhost = await create(store, "example.com")
    last = datetime(2026, 5, 6, 7, 8, 9, tzinfo=UTC)
    async with store.engine.begin() as conn:
        await conn.execute(
            update(vhost_stats)
            .where(vhost_stats.c.vhost_id == vhost.id)
            .values(
                requests=8,
                bytes_served=4096,
                response_time_total_ms=20.0,
                last_request=last,
            )
        )
    stats = await vhost_store.get_stats(store, vhost.id)
    assert stats.requests == 8
    assert stats.bytes_served == 4096
    assert stats.average_response_ms == 2.5
    assert stats.last_request == last
    assert (await vhost_store.stats_by_vhost(store))[vhost.id] == stats


async def test_certificate_preference(store: Store) -> None:
    vhost = await create(store, "example.com")
    now = datetime.now(UTC).replace(microsecond=0)

    async def add(
        source: str,
        created_at: datetime,
        days: int,
        names: tuple[str, ...] = ("example.com",),
        age_days: int = 0,
    ) -> None:
        async with store.engine.begin() as conn:
            await conn.execute(
                insert(certificates).values(
                    vhost_id=vhost.id,
                    source=source,
                    names=list(names),
                    not_before=now - timedelta(days=age_days),
                    not_after=now + timedelta(days=days),
                    cert_pem="-",
                    key_pem="-",
                    created_at=created_at,
                )
            )

    assert await vhost_store.current_certificates(store, [vhost]) == {}
    await add("self-signed", now, 365)
    assert (await vhost_store.current_certificates(store, [vhost]))[
        vhost.id
    ].source == "self-signed"
    await add("uploaded", now - timedelta(days=1), 30)
    assert (await vhost_store.current_certificates(store, [vhost]))[
        vhost.id
    ].source == "uploaded"
    await add("acme", now - timedelta(days=2), 60)
    await add("acme", now - timedelta(days=1), 90)
    chosen = (await vhost_store.current_certificates(store, [vhost]))[vhost.id]
    assert chosen.source == "acme"
    assert chosen.not_after == now + timedelta(days=90)
    assert chosen.names == ["example.com"]


async def test_certificate_unusable_ones_skipped(store: Store) -> None:
    vhost = await create(store, "example.com")
    now = datetime.now(UTC).replace(microsecond=0)
    rows = [
        # Expired yesterday: never the served certificate.
        ("acme", ["example.com"], now - timedelta(days=91), now - timedelta(days=1)),
        # Current, but for another name.
        ("uploaded", ["other.example"], now, now + timedelta(days=30)),
        ("self-signed", ["example.com"], now, now + timedelta(days=90)),
    ]
    async with store.engine.begin() as conn:
        for source, names, not_before, not_after in rows:
            await conn.execute(
                insert(certificates).values(
                    vhost_id=vhost.id,
                    source=source,
                    names=names,
                    not_before=not_before,
                    not_after=not_after,
                    cert_pem="-",
                    key_pem="-",
                    created_at=now,
                )
            )
    chosen = (await vhost_store.current_certificates(store, [vhost]))[vhost.id]
    assert chosen.source == "self-signed"
