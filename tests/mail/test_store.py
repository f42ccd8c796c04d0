"""The shared message store on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import delete, select

from onestack import passwords
from onestack.store import Store
from onestack.store import mail as mailstore
from onestack.store.mail import Delivery, GroupCommitter, QueuedRecipient
from onestack.store.tables import mail_folders

RAW = (
    b"From: =?utf-8?q?J=C3=BCrgen?= <j@example.org>\r\n"
    b"To: user@example.com\r\n"
    b"Subject: =?utf-8?b?R3LDvMOfZQ==?=\r\n"
    b"Date: Tue, 13 Oct 2025 10:30:00 +0200\r\n"
    b"Message-ID: <one@example.org>\r\n"
    b"\r\n"
    b"Hello\r\n"
)


async def make_account(
    store: Store, address: str = "user@example.com"
) -> mailstore.Account:
    account, revived = await mailstore.create_account(
        store,
        address,
        name="User",
        password_hash=passwords.hash_password("secret-pass"),
        quota=10_000,
        enabled=True,
    )
    assert revived is False
    return account


async def test_create_makes_six_folders(store: Store) -> None:
    account = await make_account(store)
    folders = await mailstore.list_folders(store, account.id)
    assert [f.name for f in folders] == list(mailstore.API_FOLDER_NAMES)
    assert [f.special_use for f in folders] == [
        None,
        "\\Sent",
        "\\Drafts",
        "\\Trash",
        "\\Junk",
        "\\Archive",
    ]
    assert [f.imap_name for f in folders] == [
        "INBOX",
        "Sent",
        "Drafts",
        "Trash",
        "Junk",
        "Archive",
    ]
    for folder in folders:
        assert 0 < folder.uidvalidity < 2**32
        assert folder.uidnext == 1


async def test_deliver_assigns_uid_and_modseq(store: Store) -> None:
    account = await make_account(store)
    events: list[tuple[str, dict[str, Any]]] = []

    async def publish(type_: str, data: dict[str, Any]) -> None:
        events.append((type_, data))

    first = await mailstore.deliver(
        store,
        Delivery(account.id, RAW, "j@example.org", ["user@example.com"]),
        publish=publish,
        mailbox_address=account.email,
    )
    second = await mailstore.deliver(
        store, Delivery(account.id, RAW, flags=frozenset({"\\Seen", "$Label1"}))
    )
    assert (first.uid, second.uid) == (1, 2)
    assert second.modseq > first.modseq
    assert first.subject == "Grüße"
    assert first.from_header == "Jürgen <j@example.org>"
    assert first.message_id == "<one@example.org>"
    assert first.date is not None and first.date.hour == 8
    assert second.seen is True
    assert second.keywords == ["$Label1"]
    stored = await mailstore.find_message(store, first.id)
    assert stored.raw == RAW
    inbox = await mailstore.get_folder(store, account.id, "inbox")
    assert inbox is not None
    assert inbox.uidnext == 3
    assert inbox.highestmodseq == second.modseq
    assert [t for t, _ in events] == ["emailReceived", "mailFolderChanged"]
    assert events[0][1]["mailbox"] == "user@example.com"


async def test_flags_move_delete_bump_modseq(store: Store) -> None:
    account = await make_account(store)
    message = await mailstore.deliver(store, Delivery(account.id, RAW))
    flagged = await mailstore.set_flags(store, message.id, seen=True, flagged=True)
    assert flagged.seen and flagged.flagged
    assert flagged.modseq > message.modseq
    moved = await mailstore.move(store, message.id, "archive")
    assert moved.id == message.id
    assert moved.folder == "archive"
    assert moved.uid == 1
    inbox = await mailstore.get_folder(store, account.id, "inbox")
    assert inbox is not None and inbox.highestmodseq >= flagged.modseq + 1
    with pytest.raises(mailstore.FolderNotFound):
        await mailstore.move(store, message.id, "nowhere")
    await mailstore.delete_message(store, message.id)
    assert await mailstore.get_message(store, message.id) is None
    with pytest.raises(mailstore.MessageNotFound):
        await mailstore.delete_message(store, message.id)


async def test_list_newest_first_stable_pages(store: Store) -> None:
    account = await make_account(store)
    ids = [
        (await mailstore.deliver(store, Delivery(account.id, RAW))).id for _ in range(7)
    ]
    await mailstore.set_flags(store, ids[0], seen=True)
    pages = []
    for offset in range(0, 7, 3):
        page = await mailstore.list_messages(
            store, account.id, folder="inbox", limit=3, offset=offset
        )
        pages.extend(m.id for m in page)
    assert pages == sorted(ids, reverse=True)
    unread = await mailstore.list_messages(
        store, account.id, unread_only=True, limit=50
    )
    assert ids[0] not in [m.id for m in unread]
    assert len(unread) == 6
    stats = (await mailstore.account_stats(store, [account.id]))[account.id]
    assert stats.message_count == 7
    assert stats.unread_count == 6
    assert stats.quota_used == 7 * len(RAW)


async def test_soft_delete_keeps_messages(store: Store) -> None:
    account = await make_account(store)
    await mailstore.deliver(store, Delivery(account.id, RAW))
    kept = await mailstore.delete_account(store, account.email, delete_messages=False)
    assert kept == 1
    assert await mailstore.get_account(store, account.email) is None
    revived, was_revived = await mailstore.create_account(
        store, account.email, name="Again", password_hash="x", quota=1, enabled=True
    )
    assert was_revived is True
    assert revived.id == account.id
    assert (await mailstore.account_stats(store, [revived.id]))[
        revived.id
    ].message_count == 1
    assert (
        await mailstore.delete_account(store, account.email, delete_messages=True) == 0
    )
    again, was_revived = await mailstore.create_account(
        store, account.email, name="New", password_hash="x", quota=1, enabled=True
    )
    assert was_revived is False
    assert (await mailstore.account_stats(store, [again.id]))[
        again.id
    ].message_count == 0


async def test_verify_credentials(store: Store) -> None:
    account = await make_account(store)
    assert (
        await mailstore.verify_credentials(store, "USER@example.com", "secret-pass")
    ) == account
    assert await mailstore.verify_credentials(store, account.email, "wrong") is None
    assert (
        await mailstore.verify_credentials(store, "nobody@example.com", "secret-pass")
        is None
    )
    await mailstore.update_account(store, account.email, enabled=False)
    assert (
        await mailstore.verify_credentials(store, account.email, "secret-pass") is None
    )


async def test_group_commit_batches_sessions(store: Store) -> None:
    account = await make_account(store)
    committer = GroupCommitter(store)
    committer.start()
    try:
        results = await asyncio.gather(
            *(
                committer.store_message(
                    [Delivery(account.id, RAW + str(i).encode())],
                    [QueuedRecipient("user@example.com", "far@example.net", RAW)]
                    if i == 0
                    else [],
                    {"messagesReceived": 1},
                )
                for i in range(40)
            )
        )
    finally:
        await committer.stop()
    uids = sorted(stored[0].uid for stored in results)
    assert uids == list(range(1, 41))
    assert committer.batches < 40
    assert await mailstore.queue_length(store) == 1
    assert (await mailstore.read_counters(store))["messagesReceived"] == 40


async def test_group_commit_isolates_failure(store: Store) -> None:
    account = await make_account(store)
    committer = GroupCommitter(store)
    committer.start()
    try:
        good = committer.store_message([Delivery(account.id, RAW)])
        bad = committer.store_message([Delivery(account.id, RAW, folder="missing")])
        results = await asyncio.gather(good, bad, return_exceptions=True)
    finally:
        await committer.stop()
    assert isinstance(results[1], mailstore.FolderNotFound)
    assert isinstance(results[0], list) and results[0][0].uid == 1


async def test_standard_folders_recreated_concurrently(store: Store) -> None:
    account = await make_account(store)
    async with store.engine.begin() as conn:
        await conn.execute(
            delete(mail_folders).where(
                mail_folders.c.mailbox_id == account.id,
                mail_folders.c.name.in_(["junk", "archive"]),
            )
        )

    await asyncio.gather(
        *(mailstore.ensure_standard_folders(store, account.id) for _ in range(4))
    )

    async with store.engine.connect() as conn:
        names = (
            await conn.execute(
                select(mail_folders.c.name).where(
                    mail_folders.c.mailbox_id == account.id
                )
            )
        ).scalars()
        found = sorted(names)
    assert found == sorted(mailstore.API_FOLDER_NAMES)
