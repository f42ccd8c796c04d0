"""The Alembic migrations create exactly the tables of onestack.store.tables."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from onestack.store import Store
from onestack.store.tables import metadata


async def test_migrations_match_tables(database_url: str) -> None:
    store = Store(database_url)
    try:
        await store.migrate()
        await store.migrate()  # a second run is a no-op

        def differences(sync_conn):  # type: ignore[no-untyped-def]
            context = MigrationContext.configure(sync_conn)
            return compare_metadata(context, metadata)

        async with store.engine.connect() as conn:
            diff = await conn.run_sync(differences)
            names = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
        assert diff == []
        assert set(metadata.tables) <= names
    finally:
        await store.close()
