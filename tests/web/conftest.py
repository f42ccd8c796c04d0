"""Fixtures for the web modules: a migrated store, vhost rows, a running module."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httptools
import pytest
import uvloop
from sqlalchemy import delete, insert, update

from onestack.config import HttpConfig, HttpsConfig
from onestack.modules import WorkerContext
from onestack.store import Store
from onestack.store.tables import vhost_names, vhosts
from onestack.web.module import HttpModule
from tests.support import free_port


@pytest.fixture
def event_loop_policy() -> uvloop.EventLoopPolicy:
    """Run the web tests on uvloop, as the workers do."""
    return uvloop.EventLoopPolicy()


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    store = Store(f"sqlite+aiosqlite:///{tmp_path / 'onestack.db'}")
    await store.migrate()
    yield store
    await store.close()


async def insert_vhost(
    store: Store,
    domain: str,
    document_root: Path,
    aliases: list[str] | None = None,
    enabled: bool = True,
    ssl: bool = False,
    redirect_to_https: bool = False,
) -> int:
    """Insert a vhost row and its names, as the admin API stores them."""
    now = datetime.now(UTC)
    aliases = aliases or []
    async with store.engine.begin() as conn:
        result = await conn.execute(
            insert(vhosts).values(
                domain=domain,
                aliases=aliases,
                document_root=str(document_root),
                managed_root=False,
                enabled=enabled,
                ssl=ssl,
                redirect_to_https=redirect_to_https,
                created_at=now,
                updated_at=now,
            )
        )
        vhost_id = int(result.inserted_primary_key[0])
        for name in [domain, *aliases]:
            await conn.execute(insert(vhost_names).values(name=name, vhost_id=vhost_id))
    return vhost_id


async def update_vhost(store: Store, vhost_id: int, **values: Any) -> None:
    async with store.engine.begin() as conn:
        await conn.execute(
            update(vhosts).where(vhosts.c.id == vhost_id).values(**values)
        )


async def delete_vhost(store: Store, vhost_id: int) -> None:
    async with store.engine.begin() as conn:
        await conn.execute(delete(vhosts).where(vhosts.c.id == vhost_id))


@dataclass
class RunningWeb:
    """An HttpModule serving on a free loopback port inside the test process."""

    module: HttpModule
    port: int
    store: Store
    data_dir: Path

    async def reload(self) -> None:
        await self.module.on_event({"type": "vhostUpdated", "data": {}})

    async def exchange(self, raw: bytes, timeout: float = 10.0) -> bytes:
        """Send raw bytes, half-close, and return everything until the server closes."""
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        writer.write(raw)
        await writer.drain()
        writer.write_eof()
        data = await asyncio.wait_for(reader.read(), timeout)
        writer.close()
        return data


async def start_web(
    store: Store,
    data_dir: Path,
    module_class: type[HttpModule] = HttpModule,
    **config: Any,
) -> RunningWeb:
    port = free_port()
    model = HttpsConfig if module_class.name == "https" else HttpConfig
    settings = model.model_validate({"host": "127.0.0.1", "port": port, **config})
    module = module_class(settings, WorkerContext(data_dir, store, events=None))
    await module.start()
    return RunningWeb(module, port, store, data_dir)


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A document root with a few files."""
    root = tmp_path / "site"
    root.mkdir()
    (root / "index.html").write_text("<h1>home</h1>\n")
    (root / "about").mkdir()
    (root / "about" / "index.html").write_text("<h1>about</h1>\n")
    (root / "style.css").write_text("body { color: red }\n")
    (root / "data.bin").write_bytes(bytes(range(256)) * 4)
    return root


@pytest.fixture
async def web(store: Store, tmp_path: Path, site: Path) -> AsyncIterator[RunningWeb]:
    """The http module serving ``site`` as example.com (alias www.example.com)."""
    await insert_vhost(store, "example.com", site, aliases=["www.example.com"])
    running = await start_web(store, tmp_path / "data")
    yield running
    await running.module.stop()


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes


class _ResponseCollector:
    def __init__(self) -> None:
        self.responses: list[Response] = []
        self.parser: Any = None
        self._headers: dict[str, str] = {}
        self._body = b""

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers[name.decode().lower()] = value.decode("latin-1")

    def on_body(self, body: bytes) -> None:
        self._body += body

    def on_message_complete(self) -> None:
        status = self.parser.get_status_code()
        self.responses.append(Response(status, self._headers, self._body))
        self._headers = {}
        self._body = b""


def parse_responses(data: bytes) -> list[Response]:
    """Split a byte stream of responses (none to HEAD) into Response objects."""
    collector = _ResponseCollector()
    collector.parser = httptools.HttpResponseParser(collector)
    collector.parser.feed_data(data)
    return collector.responses
