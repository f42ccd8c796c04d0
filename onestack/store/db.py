"""Engine creation, SQLite settings and schema migrations."""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

logger = logging.getLogger(__name__)

SQLITE_FILENAME = "onestack.db"
MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def database_url(data_dir: Path, configured: str) -> str:
    """Return the configured URL, or SQLite in the data directory."""
    if configured:
        return configured
    return f"sqlite+aiosqlite:///{(data_dir / SQLITE_FILENAME).resolve()}"


def _set_sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    cursor = dbapi_connection.cursor()
    # WAL lets worker processes read while one writes; synchronous=FULL fsyncs
    # the WAL at every commit, which is what makes a stored message durable.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


class Store:
    """An open database: the async engine every query module uses."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        kwargs: dict = {"pool_pre_ping": not self.is_sqlite}
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _set_sqlite_pragmas)

    async def migrate(self) -> None:
        """Bring the schema to the newest Alembic revision."""
        async with self.engine.begin() as connection:
            await connection.run_sync(_upgrade)
        logger.info("database schema is up to date")

    async def close(self) -> None:
        await self.engine.dispose()


def alembic_config(connection: Connection | None = None) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def _upgrade(connection: Connection) -> None:
    command.upgrade(alembic_config(connection), "head")


async def open_store(
    data_dir: Path, configured_url: str, migrate: bool = False
) -> Store:
    """Open the database named by the config; migrate it when asked."""
    store = Store(database_url(data_dir, configured_url))
    if migrate:
        await store.migrate()
    return store
