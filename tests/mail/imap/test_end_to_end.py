"""IMAP in a real ``onestack serve``: SMTP delivery and store changes reach IDLE.

This test makes the admin API's changes with the same store functions and
publishes them on the same event bus. The IMAP session, in one of two worker
processes, receives them as it would receive the API's.
"""

from __future__ import annotations

import asyncio
import smtplib
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from imapclient import IMAPClient

from onestack import passwords
from onestack.events import EventClient, socket_path
from onestack.store import Store
from onestack.store import mail as mailstore
from tests.support import Server, run_server

PASSWORD = "correct horse battery"
T = TypeVar("T")


def as_admin(server: Server, action: Callable[[Store, Any], Awaitable[T]]) -> T:
    """Run ``action(store, publish)`` against the server's database and event bus."""

    async def run() -> T:
        store = Store(f"sqlite+aiosqlite:///{server.data_dir / 'onestack.db'}")
        events = EventClient(socket_path(server.data_dir))
        await events.start()
        try:
            return await action(store, events.publish)
        finally:
            await events.stop()
            await store.close()

    return asyncio.run(run())


async def create_mailbox(store: Store, publish: Any) -> int:
    account, _ = await mailstore.create_account(
        store,
        "erin@example.com",
        name="Erin",
        password_hash=passwords.hash_password(PASSWORD),
        quota=10_000_000,
        enabled=True,
    )
    await publish("mailboxCreated", {"email": "erin@example.com"})
    return account.id


def test_smtp_delivery_and_store_changes_reach_idle(tmp_path: Path) -> None:
    overrides = {"modules": {"email": {"enabled": True, "workers": 2}}}
    with run_server(tmp_path / "data", overrides) as server:
        assert server.wait_module("email")["running"], server.log()
        account_id = as_admin(server, create_mailbox)
        imap_port = server.port("email", "imap.port")
        smtp_port = server.port("email", "smtp.port")

        with IMAPClient("127.0.0.1", imap_port, ssl=False, timeout=30) as client:
            client.login("erin@example.com", PASSWORD)
            client.select_folder("INBOX")
            client.idle()
            with smtplib.SMTP("127.0.0.1", smtp_port, timeout=30) as smtp:
                smtp.sendmail(
                    "someone@example.org",
                    ["erin@example.com"],
                    b"From: someone@example.org\r\nSubject: over smtp\r\n\r\nhello\r\n",
                )
            arrived = client.idle_check(timeout=15)
            assert (1, b"EXISTS") in arrived, server.log()[-3000:]
            client.idle_done()

            async def first_message(store: Store, publish: Any) -> int:
                summaries = await mailstore.list_messages(
                    store, account_id, folder="inbox"
                )
                return summaries[0].id

            message_id = as_admin(server, first_message)
            client.idle()

            async def mark_read(store: Store, publish: Any) -> None:
                await mailstore.set_flags(store, message_id, seen=True, publish=publish)

            as_admin(server, mark_read)
            seen = client.idle_check(timeout=15)
            assert any(
                response[1] == b"FETCH" and b"\\Seen" in response[2][3]
                for response in seen
            ), seen

            async def delete(store: Store, publish: Any) -> None:
                await mailstore.delete_message(store, message_id, publish=publish)

            as_admin(server, delete)
            gone = client.idle_check(timeout=15)
            client.idle_done()
            assert (1, b"EXPUNGE") in gone
