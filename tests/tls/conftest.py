from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import insert

from onestack.store import Store
from onestack.store.tables import vhost_names, vhosts


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    """A migrated SQLite store in the test's own folder."""
    store = Store(f"sqlite+aiosqlite:///{tmp_path / 'onestack.db'}")
    await store.migrate()
    try:
        yield store
    finally:
        await store.close()


async def add_vhost(
    store: Store,
    domain: str,
    aliases: list[str] | None = None,
    ssl: bool = True,
    enabled: bool = True,
) -> int:
    """Insert a vhost row the way the vhost API stores it; return its id."""
    now = datetime.now(UTC)
    aliases = aliases or []
    async with store.engine.begin() as conn:
        result = await conn.execute(
            insert(vhosts).values(
                domain=domain,
                aliases=aliases,
                document_root="/nonexistent",
                managed_root=False,
                enabled=enabled,
                ssl=ssl,
                redirect_to_https=False,
                created_at=now,
                updated_at=now,
            )
        )
        vhost_id = int(result.inserted_primary_key[0])
        for name in [domain, *aliases]:
            await conn.execute(insert(vhost_names).values(name=name, vhost_id=vhost_id))
    return vhost_id
