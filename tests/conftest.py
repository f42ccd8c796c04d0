from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from onestack.store import Store
from tests.support import Server, run_server


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    """A OneStack server with every module disabled, on free loopback ports."""
    with run_server(tmp_path / "data") as running:
        yield running


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    """A fresh, empty PostgreSQL database, dropped after the test.

    Skips unless ONESTACK_TEST_POSTGRES_URL names a server (.ci/run starts one).
    """
    base = os.environ.get("ONESTACK_TEST_POSTGRES_URL")
    if not base:
        pytest.skip("ONESTACK_TEST_POSTGRES_URL is not set (.ci/run sets it)")
    name = f"onestack_test_{secrets.token_hex(6)}"
    admin = create_async_engine(base, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.exec_driver_sql(f"CREATE DATABASE {name}")
    try:
        yield base.rsplit("/", 1)[0] + "/" + name
    finally:
        async with admin.connect() as conn:
            await conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh database URL, once for SQLite and once for PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    """A migrated store on each backend; tests that need files override it."""
    opened = Store(database_url)
    await opened.migrate()
    try:
        yield opened
    finally:
        await opened.close()
