"""An email module running in a thread of the test process, on SQLite."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from onestack import passwords
from onestack.config import EmailConfig
from onestack.mail.module import EmailModule
from onestack.modules import WorkerContext
from onestack.store import Store
from onestack.store import mail as mailstore
from tests.support import free_port

T = TypeVar("T")

PASSWORD = "correct horse battery"


@dataclass
class MailServer:
    """A running EmailModule: its port, store and event loop."""

    module: EmailModule
    store: Store
    loop: asyncio.AbstractEventLoop
    port: int
    events: list[tuple[str, dict[str, Any]]]

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine on the server's loop and return its result."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(60)

    def add_mailbox(
        self, address: str, quota: int = 10_000_000, enabled: bool = True
    ) -> mailstore.Account:
        account, _ = self.run(
            mailstore.create_account(
                self.store,
                address,
                name=address,
                password_hash=passwords.hash_password(PASSWORD),
                quota=quota,
                enabled=enabled,
            )
        )
        self.run(self.module.directory.reload())
        return account

    def inbox(
        self, address: str, folder: str = "inbox"
    ) -> list[mailstore.StoredMessage]:
        account = self.run(mailstore.find_account(self.store, address))
        summaries = self.run(
            mailstore.list_messages(self.store, account.id, folder=folder, limit=10_000)
        )
        return [self.run(mailstore.find_message(self.store, m.id)) for m in summaries]


def start_mail_server(
    data_dir: Path, smtp: dict[str, Any] | None = None
) -> tuple[MailServer, threading.Thread]:
    data_dir.mkdir(parents=True, exist_ok=True)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    events: list[tuple[str, dict[str, Any]]] = []

    async def setup() -> tuple[EmailModule, Store]:
        store = Store(f"sqlite+aiosqlite:///{data_dir / 'onestack.db'}")
        await store.migrate()
        config = EmailConfig.model_validate(
            {
                "enabled": True,
                "host": "127.0.0.1",
                "smtp": {"port": free_port(), "hostname": "mx.test", **(smtp or {})},
                "imap": {"port": free_port()},
            }
        )
        context = WorkerContext(data_dir=data_dir, store=store, events=None)

        async def publish(type_: str, data: dict[str, Any]) -> None:
            events.append((type_, data))

        context.publish = publish  # type: ignore[method-assign]
        module = EmailModule(config, context)
        await module.start()
        return module, store

    module, store = asyncio.run_coroutine_threadsafe(setup(), loop).result(60)
    server = MailServer(module, store, loop, module.config.smtp.port, events)
    return server, thread


def stop_mail_server(server: MailServer, thread: threading.Thread) -> None:
    async def teardown() -> None:
        await server.module.stop()
        await server.store.close()

    server.run(teardown())
    server.loop.call_soon_threadsafe(server.loop.stop)
    thread.join(10)
    server.loop.close()


@pytest.fixture
def mail_server(tmp_path: Path) -> Iterator[MailServer]:
    server, thread = start_mail_server(tmp_path / "data")
    try:
        yield server
    finally:
        stop_mail_server(server, thread)
