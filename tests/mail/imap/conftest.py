"""An IMAP server in a background thread, on a free port, over a migrated store.

Tests drive it with blocking clients (imaplib, imapclient, mbsync, mutt), so
the server runs its own event loop in a thread. ``ImapHarness.run`` executes a
coroutine on that loop, for fixtures that insert rows as the mail code would.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import insert

from onestack import passwords
from onestack.config import EmailConfig
from onestack.mail.imap.mailstore import DEFAULT_FOLDERS, MailStore, new_uidvalidity
from onestack.mail.imap.server import ImapServer, start_imap_server
from onestack.modules import WorkerContext
from onestack.store import Store
from onestack.store.tables import mail_folders, mailboxes
from tests.support import free_port

T = TypeVar("T")
PASSWORD = "correct horse battery"
_HASH = passwords.hash_password(PASSWORD)


class ImapHarness:
    """A running server, its store, and helpers to create accounts and mail."""

    def __init__(self, data_dir: Path, url: str, **imap: Any) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.port = free_port()
        self.config = EmailConfig(
            enabled=True, host="127.0.0.1", imap={"port": self.port, **imap}
        )
        self.store = Store(url)
        self.run(self.store.migrate())
        self.context = WorkerContext(data_dir=data_dir, store=self.store, events=None)
        self.server: ImapServer = self.run(
            start_imap_server(self.config, self.context, None)
        )
        self.mail = MailStore(self.store)

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def create_account(self, address: str, quota: int = 100 * 1024 * 1024) -> int:
        """Insert an account and its six folders as the mail module does."""
        return self.run(_create_account(self.store, address, quota))

    def deliver(self, address: str, raw: bytes, folder: str = "inbox") -> int:
        """Store a message the way SMTP delivery does; returns its UID."""

        async def deliver() -> int:
            found = await self.mail.find_account(address)
            assert found is not None
            target = await self.mail.get_folder(found[0].id, folder)
            assert target is not None
            uid = await self.mail.append(found[0].id, target.id, raw, [], None)
            assert uid is not None
            await self.server.on_event(
                {"type": "emailReceived", "data": {"mailboxId": found[0].id}}
            )
            return uid

        return self.run(deliver())

    def close(self) -> None:
        self.run(self.server.stop())
        self.run(self.store.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


async def _create_account(store: Store, address: str, quota: int) -> int:
    async with store.engine.begin() as conn:
        account_id = (
            await conn.execute(
                insert(mailboxes)
                .values(
                    email=address,
                    name="",
                    password_hash=_HASH,
                    quota=quota,
                    enabled=True,
                    created_at=datetime.now(UTC),
                )
                .returning(mailboxes.c.id)
            )
        ).scalar_one()
        for name, _, special_use in DEFAULT_FOLDERS:
            await conn.execute(
                insert(mail_folders).values(
                    mailbox_id=account_id,
                    name=name,
                    special_use=special_use,
                    uidvalidity=new_uidvalidity(),
                    uidnext=1,
                    highestmodseq=1,
                    subscribed=True,
                )
            )
    return int(account_id)


@pytest.fixture
def imap(tmp_path: Path) -> Iterator[ImapHarness]:
    """A server on SQLite with accounts alice@example.com and bob@example.com."""
    harness = ImapHarness(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'onestack.db'}")
    harness.create_account("alice@example.com")
    harness.create_account("bob@example.com")
    try:
        yield harness
    finally:
        harness.close()


def make_message(
    number: int, subject: str | None = None, body: str | None = None
) -> bytes:
    subject = subject if subject is not None else f"Message {number}"
    body = (
        body if body is not None else f"Body of message {number}.\r\nSecond line.\r\n"
    )
    return (
        f"From: Sender {number} <sender{number}@example.org>\r\n"
        f"To: alice@example.com\r\n"
        f"Subject: {subject}\r\n"
        f"Date: Mon, 7 Feb 1994 21:52:25 -0800\r\n"
        f"Message-ID: <m{number}@example.org>\r\n"
        f"\r\n{body}"
    ).encode()


class RawClient:
    """A plain socket speaking IMAP by hand, for malformed and low-level input."""

    def __init__(self, port: int) -> None:
        import socket

        self.sock = socket.create_connection(("127.0.0.1", port), timeout=20)
        self.file = self.sock.makefile("rb")
        self.greeting = self.readline()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def readline(self) -> bytes:
        return self.file.readline()

    def command(self, line: bytes) -> list[bytes]:
        """Send a command line and read responses up to its tagged reply."""
        tag = line.split(b" ", 1)[0]
        self.send(line + b"\r\n")
        lines = []
        while True:
            response = self.readline()
            if not response:
                return lines
            lines.append(response)
            if response.startswith(tag + b" "):
                return lines

    def login(self, user: str = "alice@example.com") -> None:
        reply = self.command(f'L1 LOGIN {user} "{PASSWORD}"'.encode())
        assert reply[-1].startswith(b"L1 OK"), reply

    def close(self) -> None:
        self.file.close()
        self.sock.close()
