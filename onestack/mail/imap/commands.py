"""Mailbox commands of RFC 3501 section 6.3, with SPECIAL-USE, NAMESPACE, UNSELECT.

Each handler takes the session, the tag and a reader positioned after the
command name. ``HANDLERS`` joins these with the message commands of
``messages.py`` into the session's dispatch table.
"""

from __future__ import annotations

import logging
import re
import time
from typing import TYPE_CHECKING

from onestack.mail.imap import messages
from onestack.mail.imap.mailstore import Folder
from onestack.mail.imap.parser import CommandReader
from onestack.mail.imap.responses import BadCommand, CommandFailed, astring
from onestack.mail.imap.selected import SelectedMailbox, account_id_of, find_folder
from onestack.mail.imap.state import AUTHENTICATED, SELECTED, State

if TYPE_CHECKING:
    from onestack.mail.imap.session import ImapSession

logger = logging.getLogger(__name__)

DELIMITER = "/"
MAX_NAME_LENGTH = 255
SYSTEM_FLAGS = "\\Answered \\Flagged \\Deleted \\Seen \\Draft"
_STATUS_ITEMS = frozenset(
    {"MESSAGES", "RECENT", "UIDNEXT", "UIDVALIDITY", "UNSEEN", "HIGHESTMODSEQ"}
)


def _check_new_name(name: str) -> str:
    name = name.rstrip(DELIMITER)
    if not name or len(name) > MAX_NAME_LENGTH:
        raise CommandFailed("invalid mailbox name", code="CANNOT")
    if (
        any(c in name for c in "*%\r\n\x00")
        or "//" in name
        or name.startswith(DELIMITER)
    ):
        raise CommandFailed(f"invalid mailbox name {name!r}", code="CANNOT")
    return name


def _is_standard(folder: Folder) -> bool:
    return folder.name == "inbox" or folder.special_use is not None


# --- SELECT, EXAMINE, CLOSE, UNSELECT -----------------------------------------


async def _select(
    session: ImapSession, tag: str, reader: CommandReader, read_only: bool
) -> None:
    reader.sp()
    name = reader.mailbox()
    if reader.try_sp():
        # RFC 7162 section 3.1.8: SELECT mailbox (CONDSTORE).
        reader.open_list()
        while not reader.close_list():
            reader.try_sp()
            if reader.atom().upper() == "CONDSTORE":
                session.condstore = True
    reader.end()

    session.selected = None
    session.state = State.AUTHENTICATED
    folder = await find_folder(session, name)
    selected = await SelectedMailbox.open(session.server.mail, folder, read_only)
    first_unseen = await session.server.mail.first_unseen_uid(folder.id)

    lines = [
        f"* FLAGS ({SYSTEM_FLAGS})",
        f"* OK [PERMANENTFLAGS ({SYSTEM_FLAGS} \\*)] flags permitted",
        f"* {selected.exists} EXISTS",
        # NOTE: \Recent lives only in the session that saw a message arrive;
        # messages already present at SELECT are never reported as recent.
        "* 0 RECENT",
    ]
    if first_unseen is not None:
        lines.append(f"* OK [UNSEEN {selected.sequence_of(first_unseen)}] first unseen")
    lines += [
        f"* OK [UIDVALIDITY {folder.uidvalidity}] UIDs valid",
        f"* OK [UIDNEXT {folder.uidnext}] predicted next UID",
        f"* OK [HIGHESTMODSEQ {folder.highestmodseq}] highest modseq",
    ]
    await session.send("\r\n".join(lines) + "\r\n")
    session.selected = selected
    session.changes_pending = False
    session.last_poll = time.monotonic()
    session.state = State.SELECTED
    mode = "READ-ONLY" if read_only else "READ-WRITE"
    await session.send(
        f"{tag} OK [{mode}] {'EXAMINE' if read_only else 'SELECT'} completed\r\n"
    )


async def imap_SELECT(session: ImapSession, tag: str, reader: CommandReader) -> None:
    await _select(session, tag, reader, read_only=False)


async def imap_EXAMINE(session: ImapSession, tag: str, reader: CommandReader) -> None:
    await _select(session, tag, reader, read_only=True)


def _deselect(session: ImapSession) -> None:
    session.selected = None
    session.state = State.AUTHENTICATED


async def imap_CLOSE(session: ImapSession, tag: str, reader: CommandReader) -> None:
    reader.end()
    selected = session.selected
    assert selected is not None
    if not selected.read_only:
        # RFC 3501 section 6.4.2: CLOSE expunges silently.
        removed = await session.server.mail.expunge(selected.folder, None)
        await session.server.publish_deleted(
            account_id_of(session), selected.folder, removed
        )
    _deselect(session)
    await session.send(f"{tag} OK CLOSE completed\r\n")


async def imap_UNSELECT(session: ImapSession, tag: str, reader: CommandReader) -> None:
    reader.end()
    _deselect(session)
    await session.send(f"{tag} OK UNSELECT completed\r\n")


# --- CREATE, DELETE, RENAME, SUBSCRIBE ------------------------------------------


async def imap_CREATE(session: ImapSession, tag: str, reader: CommandReader) -> None:
    reader.sp()
    name = _check_new_name(reader.mailbox())
    reader.end()
    mail = session.server.mail
    account_id = account_id_of(session)
    if await mail.get_folder(account_id, name) is not None:
        raise CommandFailed(f"mailbox {name!r} already exists", code="ALREADYEXISTS")
    # RFC 3501 section 6.3.3: create the superior names the new name needs.
    components = name.split(DELIMITER)
    for depth in range(1, len(components)):
        parent = DELIMITER.join(components[:depth])
        if await mail.get_folder(account_id, parent) is None:
            await mail.create_folder(account_id, parent)
    if not await mail.create_folder(account_id, name):
        raise CommandFailed(f"mailbox {name!r} already exists", code="ALREADYEXISTS")
    await session.server.publish_folder_changed(account_id, None)
    await session.complete(tag, "CREATE completed")


async def imap_DELETE(session: ImapSession, tag: str, reader: CommandReader) -> None:
    reader.sp()
    name = reader.mailbox()
    reader.end()
    folder = await find_folder(session, name)
    if _is_standard(folder):
        raise CommandFailed(f"{folder.imap_name} cannot be deleted", code="CANNOT")
    deleted = await session.server.mail.delete_folder(folder)
    account_id = account_id_of(session)
    await session.server.publish_deleted(account_id, folder, [(i, 0) for i in deleted])
    await session.server.publish_folder_changed(account_id, folder.id)
    await session.complete(tag, "DELETE completed")


async def imap_RENAME(session: ImapSession, tag: str, reader: CommandReader) -> None:
    reader.sp()
    old_name = reader.mailbox()
    reader.sp()
    new_name = _check_new_name(reader.mailbox())
    reader.end()
    mail = session.server.mail
    account_id = account_id_of(session)
    folder = await find_folder(session, old_name)
    if await mail.get_folder(account_id, new_name) is not None:
        raise CommandFailed(
            f"mailbox {new_name!r} already exists", code="ALREADYEXISTS"
        )

    if folder.name == "inbox":
        # RFC 3501 section 6.3.5: renaming INBOX moves its messages to the new
        # name and leaves INBOX empty.
        if not await mail.create_folder(account_id, new_name):
            raise CommandFailed(
                f"mailbox {new_name!r} already exists", code="ALREADYEXISTS"
            )
        target = await find_folder(session, new_name)
        uids = [state.uid for state in await mail.message_states(folder.id)]
        moved = await mail.move(folder, uids, target)
        await session.server.publish_changes(
            account_id, [change for *_, change in moved]
        )
    elif _is_standard(folder):
        raise CommandFailed(f"{folder.imap_name} cannot be renamed", code="CANNOT")
    elif not await mail.rename_folder(account_id, folder, new_name):
        raise CommandFailed(
            f"mailbox {new_name!r} already exists", code="ALREADYEXISTS"
        )
    await session.server.publish_folder_changed(account_id, folder.id)
    await session.complete(tag, "RENAME completed")


async def _subscribe(
    session: ImapSession, tag: str, reader: CommandReader, on: bool
) -> None:
    reader.sp()
    name = reader.mailbox()
    reader.end()
    folder = await find_folder(session, name)
    await session.server.mail.set_subscribed(folder.id, on)
    await session.complete(tag, ("SUBSCRIBE" if on else "UNSUBSCRIBE") + " completed")


async def imap_SUBSCRIBE(session: ImapSession, tag: str, reader: CommandReader) -> None:
    await _subscribe(session, tag, reader, True)


async def imap_UNSUBSCRIBE(
    session: ImapSession, tag: str, reader: CommandReader
) -> None:
    await _subscribe(session, tag, reader, False)


# --- LIST, LSUB, STATUS, NAMESPACE -----------------------------------------------


def _pattern(reference: str, pattern: str) -> re.Pattern[str]:
    """Compile a LIST pattern: ``*`` matches anything, ``%`` stops at the delimiter."""
    full = reference + pattern if not pattern.startswith(DELIMITER) else pattern
    regex = ""
    for char in full:
        if char == "*":
            regex += ".*"
        elif char == "%":
            regex += "[^/]*"
        else:
            regex += re.escape(char)
    return re.compile(regex + r"\Z", re.DOTALL)


def _matches(pattern: re.Pattern[str], name: str) -> bool:
    if pattern.match(name):
        return True
    # INBOX is case-insensitive (RFC 3501 section 5.1).
    return (
        name == "INBOX"
        and pattern.match("inbox") is not None
        or (name == "INBOX" and pattern.match("Inbox") is not None)
    )


async def _list(
    session: ImapSession, tag: str, reader: CommandReader, command: str
) -> None:
    reader.sp()
    if command == "LIST" and reader.peek() == 0x28:
        # RFC 5258 selection options; only their absence changes nothing here.
        reader.skip_list()
        reader.sp()
    reference = reader.mailbox()
    reader.sp()
    pattern_text = reader.list_mailbox()
    if reader.try_sp():
        # RFC 5258/6154 "RETURN (...)": special-use attributes are always sent.
        if reader.atom().upper() != "RETURN":
            raise BadCommand("expected RETURN")
        reader.sp()
        reader.skip_list()
    reader.end()

    if pattern_text == "":
        # RFC 3501 section 6.3.8: the delimiter and root of the reference.
        await session.send(f'* {command} (\\Noselect) "{DELIMITER}" ""\r\n')
        await session.complete(tag, f"{command} completed")
        return

    pattern = _pattern(reference, pattern_text)
    folders = await session.server.mail.list_folders(account_id_of(session))
    names = {folder.imap_name for folder in folders}
    lines = []
    for folder in folders:
        name = folder.imap_name
        if command == "LSUB" and not folder.subscribed:
            continue
        if not _matches(pattern, name):
            continue
        attributes = []
        has_children = any(other.startswith(name + DELIMITER) for other in names)
        attributes.append("\\HasChildren" if has_children else "\\HasNoChildren")
        if folder.special_use:
            attributes.append(folder.special_use)
        if command == "LIST" and folder.subscribed:
            attributes.append("\\Subscribed")
        lines.append(
            f'* {command} ({" ".join(attributes)}) "{DELIMITER}" '.encode()
            + astring(name)
            + b"\r\n"
        )
    await session.send(b"".join(lines))
    await session.complete(tag, f"{command} completed")


async def imap_LIST(session: ImapSession, tag: str, reader: CommandReader) -> None:
    await _list(session, tag, reader, "LIST")


async def imap_LSUB(session: ImapSession, tag: str, reader: CommandReader) -> None:
    await _list(session, tag, reader, "LSUB")


async def imap_STATUS(session: ImapSession, tag: str, reader: CommandReader) -> None:
    reader.sp()
    name = reader.mailbox()
    reader.sp()
    reader.open_list()
    items: list[str] = []
    while not reader.close_list():
        if items:
            reader.sp()
        item = reader.atom().upper()
        if item not in _STATUS_ITEMS:
            raise BadCommand(f"unknown STATUS item {item}")
        items.append(item)
    reader.end()

    folder = await find_folder(session, name)
    count, unseen, _ = await session.server.mail.folder_counts(folder.id)
    values = {
        "MESSAGES": count,
        "RECENT": 0,
        "UIDNEXT": folder.uidnext,
        "UIDVALIDITY": folder.uidvalidity,
        "UNSEEN": unseen,
        "HIGHESTMODSEQ": folder.highestmodseq,
    }
    pairs = " ".join(f"{item} {values[item]}" for item in items)
    await session.send(
        b"* STATUS " + astring(folder.imap_name) + f" ({pairs})\r\n".encode()
    )
    await session.complete(tag, "STATUS completed")


async def imap_NAMESPACE(session: ImapSession, tag: str, reader: CommandReader) -> None:
    reader.end()
    # RFC 2342: one personal namespace, no shared or other users' namespaces.
    await session.send(f'* NAMESPACE (("" "{DELIMITER}")) NIL NIL\r\n')
    await session.complete(tag, "NAMESPACE completed")


# --- APPEND ---------------------------------------------------------------------------


async def imap_APPEND(session: ImapSession, tag: str, reader: CommandReader) -> None:
    reader.sp()
    name = reader.mailbox()
    reader.sp()
    flags: list[str] = []
    internal_date = None
    if reader.peek() == 0x28:
        flags = reader.flag_list()
        reader.sp()
    if reader.peek() == 0x22:
        internal_date = reader.date_time()
        reader.sp()
    if reader.peek() != 0x7B:
        raise BadCommand("APPEND needs the message as a literal")
    raw = reader.literal()
    reader.end()

    folder = await find_folder(session, name, code="TRYCREATE")
    account_id = account_id_of(session)
    uid = await session.server.mail.append(
        account_id,
        folder.id,
        raw,
        [f for f in flags if f.lower() != "\\recent"],
        internal_date,
    )
    if uid is None:
        raise CommandFailed("mailbox quota exceeded", code="OVERQUOTA")
    await session.server.publish_folder_changed(account_id, folder.id)
    await session.complete(
        tag, f"[APPENDUID {folder.uidvalidity} {uid}] APPEND completed"
    )


HANDLERS = {
    "SELECT": (imap_SELECT, AUTHENTICATED),
    "EXAMINE": (imap_EXAMINE, AUTHENTICATED),
    "CREATE": (imap_CREATE, AUTHENTICATED),
    "DELETE": (imap_DELETE, AUTHENTICATED),
    "RENAME": (imap_RENAME, AUTHENTICATED),
    "SUBSCRIBE": (imap_SUBSCRIBE, AUTHENTICATED),
    "UNSUBSCRIBE": (imap_UNSUBSCRIBE, AUTHENTICATED),
    "LIST": (imap_LIST, AUTHENTICATED),
    "LSUB": (imap_LSUB, AUTHENTICATED),
    "STATUS": (imap_STATUS, AUTHENTICATED),
    "NAMESPACE": (imap_NAMESPACE, AUTHENTICATED),
    "APPEND": (imap_APPEND, AUTHENTICATED),
    "CLOSE": (imap_CLOSE, SELECTED),
    "UNSELECT": (imap_UNSELECT, SELECTED),
    **messages.HANDLERS,
}
