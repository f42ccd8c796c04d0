"""Row ids are never reused after a delete, on SQLite as on PostgreSQL.

The API names vhosts, records and messages by id, so a reused id would let
a retried DELETE remove a row created after the first one.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Integer, text

from onestack.store import Store
from onestack.store import vhosts as vhost_store
from onestack.store.tables import metadata


async def create(store: Store, domain: str) -> int:
    vhost = await vhost_store.create_vhost(
        store,
        domain=domain,
        aliases=[],
        document_root=f"/srv/{domain}",
        managed_root=False,
        enabled=True,
        ssl=False,
        redirect_to_https=False,
    )
    return vhost.id


async def test_deleted_vhost_id_not_reused(store: Store) -> None:
    await create(store, "first.example")
    last = await create(store, "second.example")
    assert await vhost_store.delete_vhost(store, last) is not None
    assert await create(store, "third.example") > last


async def test_sqlite_id_tables_autoincrement(tmp_path: Path) -> None:
    store = Store(f"sqlite+aiosqlite:///{tmp_path / 'test.db'}")
    await store.migrate()
    try:
        async with store.engine.connect() as conn:
            rows = await conn.execute(text("SELECT name, sql FROM sqlite_master"))
            schema = {row.name: row.sql for row in rows}
    finally:
        await store.close()
    id_tables = [
        table.name
        for table in metadata.sorted_tables
        if "id" in table.c and isinstance(table.c.id.type, Integer)
    ]
    assert id_tables
    for name in id_tables:
        assert "AUTOINCREMENT" in schema[name], name
