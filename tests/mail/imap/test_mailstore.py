"""The IMAP store queries on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from onestack.mail.imap.mailstore import MailStore
from onestack.store import Store
from tests.mail.imap.conftest import _create_account, make_message


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'onestack.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[Store]:
    opened = Store(store_url)
    await opened.migrate()
    try:
        yield opened
    finally:
        await opened.close()


async def test_uids_and_modseq_follow_the_contract(store: Store) -> None:
    mail = MailStore(store)
    account_id = await _create_account(store, "alice@example.com", 10**8)
    inbox = await mail.get_folder(account_id, "INBOX")
    assert inbox is not None
    assert inbox.name == "inbox"
    assert 0 < inbox.uidvalidity < 2**32

    uids = [
        await mail.append(account_id, inbox.id, make_message(n), [], None)
        for n in range(3)
    ]
    assert uids == [1, 2, 3]
    folder = await mail.folder_by_id(inbox.id)
    assert folder is not None
    assert folder.uidnext == 4
    assert folder.highestmodseq == 4
    states = await mail.message_states(inbox.id)
    assert [state.modseq for state in states] == [2, 3, 4]

    changes, modified = await mail.store_flags(
        folder, [1, 2], "add", ["\\Seen", "work"], None
    )
    assert {change.read for change in changes} == {True}
    assert modified == []
    states = {state.uid: state for state in await mail.message_states(inbox.id)}
    assert states[1].flags == ("\\Seen", "work")
    assert states[1].modseq == 5
    assert await mail.highestmodseq(inbox.id) == 5

    _, modified = await mail.store_flags(folder, [1, 3], "add", ["\\Flagged"], 4)
    assert modified == [1]  # changed at modseq 5, after 4
    assert "\\Flagged" in (await mail.message_states(inbox.id))[2].flags


async def test_move_keeps_row_and_copy_makes_new(store: Store) -> None:
    mail = MailStore(store)
    account_id = await _create_account(store, "bob@example.com", 10**8)
    inbox = await mail.get_folder(account_id, "INBOX")
    archive = await mail.get_folder(account_id, "Archive")
    assert inbox is not None and archive is not None
    for number in range(2):
        await mail.append(account_id, inbox.id, make_message(number), ["\\Seen"], None)
    before = {state.uid: state.id for state in await mail.message_states(inbox.id)}

    moved = await mail.move(inbox, [1], archive)
    assert [(old, new) for _, old, new, _ in moved] == [(1, 1)]
    assert moved[0][0] == before[1]  # the same row
    assert moved[0][3].folder == "archive"
    copied = await mail.copy(account_id, inbox, [2], archive)
    assert copied == [(2, 2)]
    archived = await mail.message_states(archive.id)
    assert [state.uid for state in archived] == [1, 2]
    assert archived[1].id != before[2]
    assert archived[1].flags == ("\\Seen",)
    assert [state.uid for state in await mail.message_states(inbox.id)] == [2]
    inbox_after = await mail.folder_by_id(inbox.id)
    assert inbox_after is not None
    assert inbox_after.highestmodseq > inbox.highestmodseq + 2

    await mail.store_flags(inbox_after, [2], "add", ["\\Deleted"], None)
    removed = await mail.expunge(inbox_after, None)
    assert removed == [(before[2], 2)]
    assert await mail.message_states(inbox.id) == []


async def test_folders_create_rename_delete(store: Store) -> None:
    mail = MailStore(store)
    account_id = await _create_account(store, "carol@example.com", 10**8)
    assert await mail.create_folder(account_id, "Lists")
    assert await mail.create_folder(account_id, "Lists/python")
    assert not await mail.create_folder(account_id, "Lists")
    lists = await mail.get_folder(account_id, "Lists")
    child = await mail.get_folder(account_id, "Lists/python")
    assert lists is not None and child is not None
    assert await mail.rename_folder(account_id, lists, "Groups")
    renamed = await mail.get_folder(account_id, "Groups/python")
    assert renamed is not None
    assert renamed.uidvalidity != child.uidvalidity
    await mail.append(account_id, renamed.id, make_message(1), [], None)
    deleted = await mail.delete_folder(renamed)
    assert len(deleted) == 1
    assert await mail.get_folder(account_id, "Groups/python") is None
    names = [folder.imap_name for folder in await mail.list_folders(account_id)]
    assert names == ["INBOX", "Sent", "Drafts", "Trash", "Junk", "Archive", "Groups"]


async def test_quota_and_missing_folders(store: Store) -> None:
    mail = MailStore(store)
    account_id = await _create_account(store, "dave@example.com", 250)
    inbox = await mail.get_folder(account_id, "inbox")
    assert inbox is not None
    assert await mail.append(account_id, inbox.id, make_message(1), [], None) == 1
    assert await mail.append(account_id, inbox.id, make_message(2), [], None) is None
    found = await mail.find_account("DAVE@example.com")
    assert found is not None
    assert found[0].id == account_id
    await mail.ensure_default_folders(account_id)
    assert len(await mail.list_folders(account_id)) == 6
